"""The chaos run's fault: the billing handler dies between two billing steps.

Lives here, not in the runtime: only the local stack installs it (``devstack/run.py``,
when ``BILLING_CHAOS_CRASH_RATE`` > 0, which ``make chaos`` sets). It goes in through
``chalicelib.billing.entry.step_hook``, the same seam as ``BillingDeps.checkpoint``
that the integration tests crash billing with, and works for handlers run in process.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable


class ChaosCrash(RuntimeError):
    """Injected by the chaos run: the handler dies between two billing steps."""


def chaos_checkpoint(rate: float) -> Callable[[str], None]:
    """Crash after a billing step with probability ``rate``, and at the latest after ``2 / rate`` steps.

    The steps are ``chalicelib.billing.sessions.STEPS``, each run once per batch, so a
    crash fails every session of the batch still in flight. The bound keeps a short run
    from going without any crash (counted per process, across invocations).
    """
    lock = threading.Lock()
    since_crash = 0

    def checkpoint(step: str) -> None:
        nonlocal since_crash
        with lock:
            since_crash += 1
            crash = random.random() < rate or since_crash >= 2 / rate  # noqa: S311 - fault injection
            if crash:
                since_crash = 0
        if crash:
            raise ChaosCrash(f"chaos: crashed after {step}")

    return checkpoint


def install_from_environment(environ: dict[str, str], say: Callable[[str], None]) -> None:
    """Install the hook when ``BILLING_CHAOS_CRASH_RATE`` asks for it (a number in (0, 1])."""
    raw = environ.get("BILLING_CHAOS_CRASH_RATE", "0")
    try:
        rate = float(raw)
    except ValueError:
        raise SystemExit(f"BILLING_CHAOS_CRASH_RATE={raw!r} is invalid: expected a number between 0 and 1") from None
    if not 0 <= rate <= 1:
        raise SystemExit(f"BILLING_CHAOS_CRASH_RATE={raw!r} is invalid: expected a number between 0 and 1")
    if rate > 0:
        from chalicelib.billing import entry

        entry.step_hook = chaos_checkpoint(rate)
        say(f"chaos: billing crashes after a step with probability {rate}")
