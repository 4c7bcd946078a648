"""The runbook's local forms, and its ``./jucr`` lines, run as written against the local stack.

Each fenced ``sh`` block after a line starting with "Locally" in docs/runbook.md
is cut into commands (continuation lines joined), and every ``./jucr`` line of
the other blocks that has no ``<placeholder>`` is added; each is run by bash
from the checkout with only what the runbook says: its ``export`` lines (and
the stack's state file, which ``make run`` writes where ``./jucr`` looks). The default ports of the runbook are mapped
to this stack's ports, nothing else is rewritten. A trailing ``# exits N``
gives the expected exit code (otherwise 0); ``# -> {...}`` part of the output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "runbook.md"
LOCAL_BLOCK = re.compile(r"^Locally[^\n]*:\n```sh\n(.*?)\n```", re.MULTILINE | re.DOTALL)
AWS_BLOCK = re.compile(r"^```bash\n(.*?)\n```", re.MULTILINE | re.DOTALL)
EXPECTED_OUTPUT = re.compile(r"#.*->\s*(\{.*\}|\[.*\])\s*$")
EXPECTED_EXIT = re.compile(r"#\s*exits\s+(\d+)")
# The defaults of `make run` (devstack/__main__.py) that the runbook names.
DEFAULT_MOTO = "http://127.0.0.1:5055"
DEFAULT_OCM = "http://127.0.0.1:8011"


def local_commands(text: str) -> list[tuple[str, str]]:
    """``(exports, command)`` for every local command, in the runbook's order.

    ``exports`` holds every ``export`` line seen so far, as a shell would after
    the reader ran the earlier blocks in the same terminal.
    """
    exports: list[str] = []
    found: list[tuple[str, str]] = []
    for block in LOCAL_BLOCK.findall(text):
        for command in _joined_lines(block):
            if command.startswith("export "):
                exports.append(command)
            else:
                found.append(("\n".join(exports), command))
    as_written = [c for block in AWS_BLOCK.findall(text) for c in _joined_lines(block)
                  if c.startswith("./jucr ") and "<" not in c]
    already = {command for _, command in found}
    return found + [("\n".join(exports), c) for c in dict.fromkeys(as_written) if c not in already]


def _joined_lines(block: str) -> list[str]:
    lines: list[str] = []
    pending = ""
    for raw in block.splitlines():
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        lines.append((pending + line.strip()).strip())
        pending = ""
    return lines


COMMANDS = local_commands(RUNBOOK.read_text())


def test_the_runbook_has_local_forms():
    """A rewrite that drops the "Locally:" markers would make the test below run nothing."""
    assert len(COMMANDS) >= 15
    assert any(command.startswith("aws ") for _, command in COMMANDS)
    assert any(command.startswith("./jucr ") for _, command in COMMANDS)


def _env(local_stack) -> dict[str, str]:
    """The caller's environment without any stack or AWS settings: the runbook must supply them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MONGODB_", "JUCR_", "OCM_"))}
    env["JUCR_LOCAL_STACK_STATE"] = str(local_stack.data_dir / "devstack.json")
    return env


def _aimed_at(command: str, local_stack) -> str:
    ocm = local_stack.env["OCM_API_URL"].removesuffix("/v3")
    return command.replace(DEFAULT_MOTO, local_stack.env["AWS_ENDPOINT_URL"]).replace(DEFAULT_OCM, ocm)


@pytest.mark.parametrize(("exports", "command"), COMMANDS, ids=[c[:70] for _, c in COMMANDS])
def test_local_form_runs(local_stack, exports: str, command: str):
    if command.startswith("aws ") and shutil.which("aws") is None:
        pytest.skip("the AWS CLI is not on PATH (the runbook says how to install it)")
    done = subprocess.run(["bash", "-c", f"{exports}\n{_aimed_at(command, local_stack)}"], cwd=ROOT,
                          env=_env(local_stack), capture_output=True, text=True, timeout=300)
    wanted = EXPECTED_EXIT.search(command)
    assert done.returncode == (int(wanted.group(1)) if wanted else 0), (done.stdout[-2000:], done.stderr[-2000:])
    assert done.stdout.strip(), f"no output from {command}"
    if "Traceback" in done.stderr:
        raise AssertionError(done.stderr[-2000:])
    if command.startswith("./jucr "):
        _json_or_json_lines(done.stdout)
    expected = EXPECTED_OUTPUT.search(command)
    if expected:
        assert _shows(json.loads(expected.group(1)), done.stdout), done.stdout[-2000:]


def _json_or_json_lines(stdout: str) -> list[Any]:
    """The operator CLI's contract: one JSON document, or one per line."""
    try:
        return [json.loads(stdout)]
    except ValueError:
        return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def _shows(expected: Any, stdout: str) -> bool:
    """Whether the output (as a whole, or one of its lines) contains ``expected``."""
    try:
        documents = _json_or_json_lines(stdout)
    except ValueError:
        return False
    return any(_contains(document, expected) for document in documents)


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and _contains(actual[k], v) for k, v in expected.items())
    return actual == expected
