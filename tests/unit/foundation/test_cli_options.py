"""The operator CLI checks every enumerated option and documents every exit code, in --help and the runbook."""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from chalicelib import cli_exits
from chalicelib.__main__ import build_parser
from chalicelib.contracts.events import EVENT_SCHEMAS
from chalicelib.dlq import cli as dlq_cli
from chalicelib.dlq.reconciler import ACTION_METRICS

ROOT = Path(__file__).resolve().parents[3]
RUNBOOK = ROOT / "docs" / "runbook.md"
HELP_PATHS = [[], ["settings"], ["indexes"], ["ocm-sync"], ["dlq"], ["dlq", "list"], ["dlq", "show"],
              ["dlq", "replay"], ["dlq", "audit"]]


def _help(capsys, path: list[str]) -> str:
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args([*path, "--help"])
    assert stop.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("path", HELP_PATHS, ids=lambda p: " ".join(p) or "top")
def test_every_help_lists_its_exit_codes(capsys, path):
    text = _help(capsys, path)
    assert "exit codes:" in text
    for code in cli_exits.COMMON:
        assert f"  {code}  {cli_exits.MEANINGS[code]}" in text


def test_the_top_level_help_and_the_runbook_list_every_exit_code(capsys):
    text = _help(capsys, [])
    runbook = RUNBOOK.read_text()
    for code in cli_exits.MEANINGS:
        assert f"  {code}  " in text
        assert re.search(rf"^\| {code} \| ", runbook, re.MULTILINE), f"exit code {code} missing from the runbook"


@pytest.mark.parametrize(("argv", "option"), [
    (["dlq", "audit", "--action", "bogus"], "--action"),
    (["dlq", "audit", "--event-type", "SESSION_ENDEDX"], "--event-type"),
    (["dlq", "list", "--queue", "billing-dlq", "--event-type", "bogus"], "--event-type"),
    (["dlq", "list", "--queue", "billing"], "--queue"),
    (["dlq", "list", "--queue", "billing-dlq", "--max", "0"], "--max"),
    (["dlq", "list", "--queue", "billing-dlq", "--older-than", "soon"], "--older-than"),
    (["ocm-sync", "--max-pages", "0"], "--max-pages"),
    (["ocm-sync", "--time-budget", "nan"], "--time-budget"),
])
def test_bad_values_exit_2_naming_the_option(capsys, argv, option):
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(argv)
    assert stop.value.code == cli_exits.BAD_INPUT
    assert option in capsys.readouterr().err


def test_every_real_value_is_accepted():
    parser = build_parser()
    for action in dlq_cli.AUDIT_ACTIONS:
        assert parser.parse_args(["dlq", "audit", "--action", action]).action == action
    for event_type in EVENT_SCHEMAS:
        assert parser.parse_args(["dlq", "audit", "--event-type", event_type]).event_type == event_type


def test_audit_actions_are_every_action_the_code_writes():
    """The reconciler's actions come from its constants; a replay's skips from the verdicts in replay.py."""
    assert set(ACTION_METRICS) <= set(dlq_cli.AUDIT_ACTIONS)
    source = (ROOT / "chalicelib" / "dlq" / "replay.py").read_text()
    from chalicelib.dlq import replay

    verdicts = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and "verdict" in ast.unparse(node.targets[0]):
            value = node.value.elts[0] if isinstance(node.value, ast.Tuple) else node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                verdicts.add(value.value)
            elif isinstance(value, ast.Name):  # a named verdict: its value
                verdicts.add(getattr(replay, value.id))
    verdicts.discard(replay.REPLAY)
    assert verdicts and verdicts == set(dlq_cli.SKIP_VERDICTS)
    assert {f"skip:{verdict}" for verdict in verdicts} <= set(dlq_cli.AUDIT_ACTIONS)


def _runbook_cli_commands() -> list[str]:
    """Every ``./jucr`` command of the runbook: in code blocks and in inline code."""
    text = RUNBOOK.read_text()
    found = [line.strip() for line in text.splitlines() if line.strip().startswith("./jucr ")]
    found += re.findall(r"`(\./jucr [^`]+)`", text)
    # "./jucr ..." and "./jucr <command> --help" describe the CLI rather than run it.
    return [command for command in found if "..." not in command and "<command>" not in command]


@pytest.mark.parametrize("command", _runbook_cli_commands())
def test_every_runbook_command_parses(command):
    argv = shlex.split(re.sub(r"<[^>]+>", "x", command), comments=True)[1:]
    try:
        build_parser().parse_args(argv)
    except SystemExit as stop:  # --help exits 0; anything else is a runbook line the CLI refuses
        assert stop.code == 0, command


def test_the_jucr_wrapper_runs_the_cli_from_anywhere(tmp_path):
    if not (ROOT / ".venv" / ".installed").exists():
        pytest.skip("no venv yet: ./jucr would build it (make venv)")
    done = subprocess.run([str(ROOT / "jucr"), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: jucr ") and "exit codes:" in done.stdout
