"""``python -m chalicelib dlq list|show|replay|audit``: the on-call engineer's tool.

Every command prints JSON: one object per line for ``list`` and ``audit`` (``[]``
when nothing matched), one object for ``show`` and a summary (plus one line per
message) for ``replay``. Exit codes are those of :mod:`chalicelib.cli_exits`.
``replay`` is a dry run unless ``--execute`` (or ``--no-dry-run``) is given, and
asks for confirmation when more than five messages would be sent. It asks
before it holds anything: the check runs once without a hold (messages go back
to the queue at once), and only after the answer are the messages taken again,
held invisible long enough for the replay loop, replayed and deleted. Only
dead-letter queues are accepted: peeking a source queue would hide live
messages from their consumer and count towards their ``maxReceiveCount``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from chalicelib import cli_exits
from chalicelib.contracts.events import EVENT_SCHEMAS
from chalicelib.dlq.letters import read_body
from chalicelib.dlq.queues import DLQ_SHORT_NAMES, NotADeadLetterQueue
from chalicelib.dlq.reconciler import ACTION_METRICS
from chalicelib.dlq.replay import REPLAY, SKIP_VERDICTS, Candidate, Filters, Replayer, parse_age
from chalicelib.timestamps import aware_utc

CONFIRM_ABOVE = 5
AUDIT_MAX = 100

# What a replay writes to the audit besides "replay": "skip:" and the verdict of replay.py
# (tests/unit/foundation/test_cli_options.py checks this list against that module's source).
# Every action the audit can hold: the reconciler's decisions, then a replay's.
AUDIT_ACTIONS = (*ACTION_METRICS, REPLAY, *(f"skip:{verdict}" for verdict in SKIP_VERDICTS))
EVENT_TYPES = tuple(sorted(EVENT_SCHEMAS))
_RAW = argparse.RawDescriptionHelpFormatter


def _queue(value: str) -> str:
    if value not in DLQ_SHORT_NAMES:
        raise argparse.ArgumentTypeError(str(NotADeadLetterQueue(value)))
    return value


def _age(value: str) -> dt.timedelta:
    try:
        return parse_age(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def register(subparsers: Any) -> None:
    dlq = subparsers.add_parser("dlq", help="inspect, replay and audit dead letters",
                                epilog=cli_exits.epilog(cli_exits.NOT_CONFIRMED, cli_exits.NOT_FOUND),
                                formatter_class=_RAW)
    actions = dlq.add_subparsers(dest="dlq_action", required=True, metavar="ACTION")

    def common(parser: argparse.ArgumentParser, queue_required: bool = True, max_default: int = 10) -> None:
        parser.add_argument("--queue", type=_queue, required=queue_required,
                            help=f"dead-letter queue short name: {', '.join(DLQ_SHORT_NAMES)}")
        parser.add_argument("--max", type=_positive, default=max_default,
                            help=f"at most N messages (default {max_default})")
        parser.add_argument("--event-type", choices=EVENT_TYPES, metavar="TYPE",
                            help=f"only this detail-type: {', '.join(EVENT_TYPES)}")
        parser.add_argument("--older-than", type=_age, help="only dead for longer than this (30m, 2h, 1d)")
        parser.add_argument("--newer-than", type=_age, help="only dead for less than this (30m, 2h, 1d)")

    listing = actions.add_parser("list", help="messages in the queue and parked letters (JSON lines, [] if none)",
                                 epilog=cli_exits.epilog(), formatter_class=_RAW)
    common(listing)
    listing.set_defaults(func=cmd_list)

    show = actions.add_parser("show", help="one dead letter with its body and audit history",
                              epilog=cli_exits.epilog(cli_exits.NOT_FOUND), formatter_class=_RAW)
    common(show)
    show.add_argument("id", help="message id or dead-letter key (from list/audit)")
    show.set_defaults(func=cmd_show)

    replay = actions.add_parser("replay", help="send dead letters back to their source queue (dry run by default)",
                                epilog=cli_exits.epilog(cli_exits.NOT_CONFIRMED), formatter_class=_RAW)
    common(replay)
    mode = replay.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", dest="execute", action="store_false", default=False, help="only check (default)")
    mode.add_argument("--execute", "--no-dry-run", dest="execute", action="store_true", help="really replay")
    replay.add_argument("--yes", action="store_true", help=f"do not ask when more than {CONFIRM_ABOVE} would be sent")
    replay.add_argument("--operator", help="who is replaying (default: $USER)")
    replay.set_defaults(func=cmd_replay)

    audit = actions.add_parser("audit", help="reconciler decisions and replays, newest first (JSON lines, [] if none)",
                               epilog=cli_exits.epilog(), formatter_class=_RAW)
    common(audit, queue_required=False, max_default=AUDIT_MAX)
    audit.add_argument("--action", choices=AUDIT_ACTIONS, metavar="ACTION",
                       help=f"only this action: {', '.join(AUDIT_ACTIONS)}")
    audit.set_defaults(func=cmd_audit)


def _replayer(args: argparse.Namespace) -> Replayer:
    from chalicelib.dlq.entry import replay_ports

    return Replayer(args.queue, **replay_ports())


def _filters(args: argparse.Namespace) -> Filters:
    return Filters(max=args.max, event_type=args.event_type, older_than=args.older_than, newer_than=args.newer_than)


def _print(obj: Any) -> None:
    print(json.dumps(obj, default=_json_default, separators=(",", ":")))


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return aware_utc(value).isoformat()
    return str(value)


def cmd_list(args: argparse.Namespace) -> int:
    replayer = _replayer(args)
    return cli_exits.print_rows(({"queue": args.queue, **c.summary()} for c in replayer.candidates(_filters(args))),
                                _print)


def cmd_show(args: argparse.Namespace) -> int:
    replayer = _replayer(args)
    wanted = args.id
    for candidate in replayer.candidates(Filters(max=max(args.max, 100))):
        if wanted in (candidate.key, candidate.letter.message_id):
            _print({"queue": args.queue, **candidate.summary(), "attributes": candidate.letter.attributes,
                    "body": _body(candidate.letter.body),
                    "history": [r for r in replayer.dead_letters.find(queue=args.queue, limit=500)
                                if candidate.key in (r["_id"], r.get("replayOf"))]})
            return cli_exits.OK
    record = replayer.dead_letters.get(wanted)
    if record is None:
        _print({"error": "NotFound", "message": f"no dead letter {wanted!r} in {args.queue} or its audit"})
        return cli_exits.NOT_FOUND
    _print(record)
    return cli_exits.OK


def _body(text: str) -> Any:
    reading = read_body(text)
    return reading.detail if reading.detail is not None else text[:2000]


def _summary(args: argparse.Namespace, operator: str, candidates: list[Candidate]) -> dict[str, Any]:
    to_send = sum(1 for c in candidates if c.verdict == REPLAY)
    return {"queue": args.queue, "dryRun": not args.execute, "operator": operator, "considered": len(candidates),
            "wouldReplay" if not args.execute else "toReplay": to_send,
            "skipped": {v: sum(1 for c in candidates if c.verdict == v) for v in {c.verdict for c in candidates}
                        if v != REPLAY}}


def cmd_replay(args: argparse.Namespace, ask: Callable[[str], str] = input) -> int:
    replayer = _replayer(args)
    operator = args.operator or os.environ.get("USER") or _login()
    # First look without holding anything: a person may take minutes to answer.
    candidates = replayer.candidates(_filters(args))
    summary = _summary(args, operator, candidates)
    if not args.execute:
        return _report(summary, candidates)
    confirmed = summary["toReplay"]
    if confirmed > CONFIRM_ABOVE and not args.yes:
        answer = _confirm(ask, f"Replay {confirmed} messages from {args.queue}? [y/N] ")
        if answer not in ("y", "yes"):
            _print({**summary, "aborted": True, "message": "not confirmed (use --yes to skip the prompt)"})
            return cli_exits.NOT_CONFIRMED
    # Now take them again, held invisible for as long as the replay loop needs, and re-check.
    candidates = replayer.candidates(_filters(args), hold=True)
    summary = _summary(args, operator, candidates)
    if summary["toReplay"] > max(confirmed, CONFIRM_ABOVE) and not args.yes:
        replayer.release(candidates)
        _print({**summary, "aborted": True,
                "message": f"{summary['toReplay']} would be sent now, {confirmed} were confirmed; run again"})
        return cli_exits.NOT_CONFIRMED
    replayer.execute(candidates, operator)
    summary["replayed"] = sum(1 for c in candidates if c.result.get("outcome") == "replayed")
    return _report(summary, candidates)


def _report(summary: dict[str, Any], candidates: list[Candidate]) -> int:
    _print(summary)
    for candidate in candidates:
        _print(candidate.summary())
    return cli_exits.OK


def _confirm(ask: Callable[[str], str], prompt: str) -> str:
    if not sys.stdin.isatty() and ask is input:
        line = sys.stdin.readline()
        return line.strip().lower()
    try:
        return ask(prompt).strip().lower()
    except EOFError:
        return ""


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def cmd_audit(args: argparse.Namespace) -> int:
    from chalicelib.dlq.entry import replay_ports

    ports = replay_ports()
    now = ports["clock"]()
    records = ports["dead_letters"].find(
        queue=args.queue, action=getattr(args, "action", None), event_type=args.event_type,
        newer_than=now - args.newer_than if args.newer_than else None,
        older_than=now - args.older_than if args.older_than else None, limit=args.max,
    )
    # Bodies may hold PII and are long: `show` is the place to read one.
    return cli_exits.print_rows(({k: v for k, v in r.items() if k != "body"} for r in records), _print)
