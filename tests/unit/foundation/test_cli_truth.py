"""The operator CLI tells the truth: the running stack's settings, ``[]`` for nothing, 6 for not found."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib import cli_exits
from chalicelib.dlq import cli as dlq_cli
from devstack.run import LOCAL_DEFAULTS

ROOT = Path(__file__).resolve().parents[3]


def _settings(state: Path | None, **env: str) -> dict:
    """``settings`` as the CLI prints it, with nothing the stack sets in the caller's environment but ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MONGODB_", "JUCR_", "OCM_"))
            and k not in LOCAL_DEFAULTS}
    if state is not None:
        base["JUCR_LOCAL_STACK_STATE"] = str(state)
    base.update(env)
    done = subprocess.run([sys.executable, "-m", "chalicelib", "settings"], cwd=ROOT, env=base,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _state(tmp_path: Path, pid: int, env: dict[str, str]) -> Path:
    path = tmp_path / "devstack.json"
    path.write_text(json.dumps({"pid": pid, "env": env}))
    return path


def test_settings_show_the_running_stacks_values(tmp_path):
    # This test's own process stands in for the running stack (the CLI only checks the pid is alive).
    state = _state(tmp_path, os.getpid(), {"MONGODB_URI": "mongodb://127.0.0.1:9/", "JUCR_STAGE": "local",
                                           **LOCAL_DEFAULTS})
    shown = _settings(state)
    assert shown["billing"]["wallet_opening_balance"] == LOCAL_DEFAULTS["WALLET_OPENING_BALANCE"] == "50.00"
    assert shown["auth"]["bcrypt_cost"] == LOCAL_DEFAULTS["BCRYPT_COST"] == "4"
    assert shown["queue"]["sqs_backoff_base_seconds"] == LOCAL_DEFAULTS["SQS_BACKOFF_BASE_SECONDS"] == "1"
    assert shown["store"]["mongodb_uri"] == "***"


def test_what_the_stack_recorded_beats_its_defaults_and_the_caller_beats_both(tmp_path):
    state = _state(tmp_path, os.getpid(), {"BCRYPT_COST": "6", "SQS_BACKOFF_BASE_SECONDS": "0"})
    shown = _settings(state, SQS_BACKOFF_BASE_SECONDS="3")
    assert (shown["auth"]["bcrypt_cost"], shown["queue"]["sqs_backoff_base_seconds"]) == ("6", "3")


def test_a_stopped_stack_or_another_stage_is_ignored(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert _settings(_state(tmp_path, gone.pid, {}))["billing"]["wallet_opening_balance"] == "0"
    alive = _state(tmp_path, os.getpid(), {})
    shown = _settings(alive, JUCR_STAGE="prod", MONGODB_URI="mongodb://x/")
    assert (shown["core"]["stage"], shown["auth"]["bcrypt_cost"]) == ("prod", "12")


class _NoLetters:
    def candidates(self, filters, hold: bool = False) -> list:
        return []

    class dead_letters:  # noqa: N801 - stands in for the repository attribute
        @staticmethod
        def get(key: str) -> None:
            return None

        @staticmethod
        def find(**query) -> list:
            return []


def _args(**over) -> argparse.Namespace:
    values = {"queue": "billing-dlq", "max": 10, "event_type": None, "older_than": None, "newer_than": None,
              "id": "nope", "action": None}
    return argparse.Namespace(**{**values, **over})


@pytest.fixture
def no_letters(monkeypatch):
    monkeypatch.setattr(dlq_cli, "_replayer", lambda args: _NoLetters())
    monkeypatch.setattr("chalicelib.dlq.entry.replay_ports", lambda: {
        "clock": lambda: dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "dead_letters": _NoLetters.dead_letters})


@pytest.mark.parametrize("command", [dlq_cli.cmd_list, dlq_cli.cmd_audit])
def test_nothing_found_prints_an_empty_json_array(no_letters, capsys, command):
    assert command(_args()) == cli_exits.OK
    assert json.loads(capsys.readouterr().out) == []


def test_show_of_an_unknown_id_exits_6_with_a_json_error(no_letters, capsys):
    assert dlq_cli.cmd_show(_args()) == cli_exits.NOT_FOUND == 6
    assert json.loads(capsys.readouterr().out)["error"] == "NotFound"
