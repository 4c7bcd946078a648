"""Operator CLI: ``./jucr <command> ...`` (or ``python -m chalicelib`` in the venv); every command prints JSON.

Run from the checkout while ``make run`` is up, it uses that stack: the values
the stack recorded in ``.local/devstack.json`` (every non-secret setting it runs
with, and its endpoints) fill every variable the environment leaves unset, so
``settings`` shows what the stack really runs with. Pointed at real AWS (``JUCR_STAGE=prod``, ``AWS_PROFILE``,
no ``AWS_ENDPOINT_URL``) it ignores the local stack and runs the same code the
Lambdas run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import cli_exits
from chalicelib.config import ConfigError
from chalicelib.sections import all_sections, load_stage_settings
from chalicelib.store.errors import StoreError

# Store or AWS unreachable: a clear JSON error and exit code 5, never a stack trace.
UNAVAILABLE = (StoreError, BotoCoreError, ClientError)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STATE_FILE = PROJECT_ROOT / ".local" / "devstack.json"


def _use_running_local_stack() -> None:
    """Fill unset variables from the running local stack, if there is one.

    ``JUCR_LOCAL_STACK_STATE`` names another stack's ``devstack.json`` (one
    started with ``--data-dir``); a stage other than ``local`` means the
    operator aims at AWS, where local endpoints would be wrong.
    """
    if os.environ.get("JUCR_NO_LOCAL_STACK") or os.environ.get("JUCR_STAGE", "local") != "local":
        return
    state = _running_stack_state(Path(os.environ.get("JUCR_LOCAL_STACK_STATE") or STATE_FILE))
    if state is None:
        return
    for key, value in state.get("env", {}).items():
        os.environ.setdefault(key, str(value))


def _running_stack_state(path: Path) -> dict | None:
    """The state file's content when its process is alive, else ``None`` (stale or unreadable)."""
    try:
        state = json.loads(path.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state if isinstance(state, dict) else None


def build_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog=os.environ.get("JUCR_CLI_PROG") or "python -m chalicelib",
                                     description="JUCR operator commands; every command prints JSON.",
                                     epilog=cli_exits.epilog(*cli_exits.MEANINGS), formatter_class=raw)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    settings_cmd = sub.add_parser("settings", help="print the effective settings by section (secrets hidden)",
                                  description="The effective settings, section by section (secrets hidden); "
                                              "with `make run` up, the running stack's values.",
                                  epilog=cli_exits.epilog(), formatter_class=raw)
    settings_cmd.set_defaults(func=_print_settings)
    indexes_cmd = sub.add_parser("indexes", help="create every collection index (idempotent; run at deploy)",
                                 epilog=cli_exits.epilog(), formatter_class=raw)
    indexes_cmd.set_defaults(func=_ensure_indexes)
    from chalicelib.billing import cli as billing_cli
    from chalicelib.dlq import cli as dlq_cli
    from chalicelib.ocm import cli as ocm_cli

    for module in (ocm_cli, dlq_cli, billing_cli):
        module.register(sub)
    return parser


def _print_settings(args: argparse.Namespace) -> int:
    print(json.dumps(all_sections(), indent=2))
    return cli_exits.OK


def _ensure_indexes(args: argparse.Namespace) -> int:
    from chalicelib import bootstrap
    from chalicelib.store import ensure_indexes

    names = ensure_indexes(bootstrap.database(), bootstrap.all_index_specs())
    print(json.dumps({"indexes": names}))
    return cli_exits.OK


def main(argv: list[str] | None = None) -> int:
    _use_running_local_stack()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        load_stage_settings()  # every section: an operator's command checks the whole stage, and says all that is wrong
    except ConfigError as exc:
        print(json.dumps({"error": "ConfigError", "message": str(exc)}), file=sys.stderr)
        return cli_exits.BAD_INPUT
    try:
        return int(args.func(args) or 0)
    except UNAVAILABLE as exc:
        print(json.dumps({"error": type(exc).__name__, "message": _reason(exc)}), file=sys.stderr)
        return cli_exits.UNAVAILABLE


def _reason(exc: Exception) -> str:
    """Say what could not be reached, without echoing credentials in a URI."""
    from chalicelib.observability.logs import scrub

    return scrub(str(exc))


if __name__ == "__main__":
    raise SystemExit(main())
