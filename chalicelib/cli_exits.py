"""The operator CLI's exit codes and output rules, in one place so ``--help``, the docs and the code agree.

Scripts and on-call engineers branch on these numbers, so a command never
invents its own: it returns one of the constants below, and its ``--help``
epilog is built from the same table (:func:`epilog`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

OK = 0
NOT_CONFIRMED = 1
BAD_INPUT = 2
STOPPED_EARLY = 3
KEY_REFUSED = 4
UNAVAILABLE = 5
NOT_FOUND = 6

MEANINGS: dict[int, str] = {
    OK: "done (nothing matched: prints [])",
    NOT_CONFIRMED: "nothing sent: replay --execute not confirmed, or more to send than confirmed (run again)",
    BAD_INPUT: "bad argument or setting (the message names it)",
    STOPPED_EARLY: "ocm-sync stopped early (--max-pages / --time-budget); run again to continue",
    KEY_REFUSED: "OpenChargeMap refused the key (OCM_API_KEY)",
    UNAVAILABLE: "store, AWS or OpenChargeMap unreachable (a JSON error on stderr)",
    NOT_FOUND: "dlq show: no such message id or key; credit-note: no such invoice",
}

# Every command can fail on its arguments, its settings or an unreachable service.
COMMON = (OK, BAD_INPUT, UNAVAILABLE)


def epilog(*codes: int) -> str:
    """The ``exit codes:`` block of a ``--help``: the common codes and ``codes``.

    Use with ``RawDescriptionHelpFormatter``, which keeps one code per line.
    """
    wanted = sorted(set(COMMON) | set(codes))
    return "exit codes:\n" + "\n".join(f"  {code}  {MEANINGS[code]}" for code in wanted)


def print_rows(rows: Iterable[dict[str, Any]], printer: Callable[[Any], None]) -> int:
    """One JSON object per line, or ``[]`` when there is none.

    Silence looked like a hang or a crash to the person at the terminal; ``[]``
    says "asked, nothing matched" and is still valid JSON for a script.
    """
    count = 0
    for row in rows:
        printer(row)
        count += 1
    if count == 0:
        print(json.dumps([]))
    return OK
