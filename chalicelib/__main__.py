"""Operator CLI: ``python -m chalicelib <command> ...``; every command prints JSON.

Run from the checkout while ``make run`` is up, it uses that stack (endpoints
from ``.local/devstack.json``) unless the environment says otherwise; pointed
at real AWS (``AWS_PROFILE``, no ``AWS_ENDPOINT_URL``) it runs the same code the
Lambdas run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.config import ConfigError, load_settings
from chalicelib.store.errors import StoreError

# Store or AWS unreachable: a clear JSON error and exit code 5, never a stack trace.
UNAVAILABLE = (StoreError, BotoCoreError, ClientError)

STATE_FILE = Path(__file__).resolve().parents[1] / ".local" / "devstack.json"


def _use_running_local_stack() -> None:
    """Fill unset variables from the running local stack, if there is one."""
    if os.environ.get("JUCR_NO_LOCAL_STACK") or not STATE_FILE.exists():
        return
    try:
        state = json.loads(STATE_FILE.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):  # stale or unreadable: no stack is running
        return
    for key, value in state.get("env", {}).items():
        os.environ.setdefault(key, value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m chalicelib", description="JUCR operator commands.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    settings_cmd = sub.add_parser("settings", help="print the effective settings (secrets hidden)")
    settings_cmd.set_defaults(func=_print_settings)
    indexes_cmd = sub.add_parser("indexes", help="create every collection index (idempotent; run at deploy)")
    indexes_cmd.set_defaults(func=_ensure_indexes)
    from chalicelib.dlq import cli as dlq_cli
    from chalicelib.ocm import cli as ocm_cli

    for module in (ocm_cli, dlq_cli):
        module.register(sub)
    return parser


def _print_settings(args: argparse.Namespace) -> int:
    print(json.dumps(load_settings().redacted(), indent=2))
    return 0


def _ensure_indexes(args: argparse.Namespace) -> int:
    from chalicelib import bootstrap
    from chalicelib.store import ensure_indexes

    names = ensure_indexes(bootstrap.database(), bootstrap.all_index_specs())
    print(json.dumps({"indexes": names}))
    return 0


def main(argv: list[str] | None = None) -> int:
    _use_running_local_stack()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        load_settings()
    except ConfigError as exc:
        print(json.dumps({"error": "ConfigError", "message": str(exc)}), file=sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except UNAVAILABLE as exc:
        print(json.dumps({"error": type(exc).__name__, "message": _reason(exc)}), file=sys.stderr)
        return 5


def _reason(exc: Exception) -> str:
    """Say what could not be reached, without echoing credentials in a URI."""
    from chalicelib.observability.logs import scrub

    return scrub(str(exc))


if __name__ == "__main__":
    raise SystemExit(main())
