"""The README's tour, run as written against the local stack.

The tour is every fenced ``sh`` block under the README's ``## Tour`` heading, in
order. Each block runs in bash from the checkout with the venv first on PATH; the
shell variables a block assigns are carried to the next, as in one terminal. The
README's ports (8000, 8001) become the fixture stack's. Each ``# -> `` line is what
the block prints: it must match a line of the output, where ``<...>`` stands for any
text (ids, times, sequence numbers). A block that starts with ``sleep`` waits for
something asynchronous (billing, the reconciler); like a person, the test runs it
again until its output matches.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
EXPECTED = "# -> "
PLACEHOLDER = re.compile(r"<[^<>]*>")
ASSIGNMENT = re.compile(r"^([A-Z_][A-Z0-9_]*)=", re.MULTILINE)
RETRY_SECONDS = 60


def tour_blocks(text: str) -> list[str]:
    """The ``sh`` blocks between ``## Tour`` and the next ``## `` heading."""
    section = text.split("\n## Tour\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```sh\n(.*?)^```$", section, re.DOTALL | re.MULTILINE)


def expected_lines(block: str) -> list[str]:
    return [line.strip()[len(EXPECTED):] for line in block.splitlines() if line.strip().startswith(EXPECTED)]


def as_pattern(expected: str) -> re.Pattern:
    parts = PLACEHOLDER.split(expected)
    return re.compile(".+?".join(re.escape(part) for part in parts))


def unmatched(block: str, output: str) -> list[str]:
    lines = [line.strip() for line in output.splitlines()]
    return [want for want in expected_lines(block)
            if not any(as_pattern(want).fullmatch(line) for line in lines)]


def test_the_readme_tour_runs_top_to_bottom(local_stack, tmp_path):
    blocks = tour_blocks(README.read_text())
    assert len(blocks) >= 8, "the tour lost its steps"
    assert all(expected_lines(block) or "sleep" in block for block in blocks)

    http = urlsplit(local_stack.base_url).netloc
    realtime = urlsplit(local_stack.realtime_url).netloc
    assert http and realtime
    env = dict(local_stack.env, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    state = tmp_path / "tour.env"
    state.write_text("")
    names: list[str] = []
    payment_file = "/tmp/jucr-payment.json"

    def run(block: str) -> str:
        script = block.replace("127.0.0.1:8000", http).replace("127.0.0.1:8001", realtime)
        script = script.replace(payment_file, str(tmp_path / "payment.json"))
        save = f"declare -p {' '.join(names)} > {shlex.quote(str(state))}" if names else ":"
        program = f"set -e -o pipefail\nsource {shlex.quote(str(state))}\n{script}\n{save}"
        result = subprocess.run(["bash", "-c", program], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"tour block failed ({result.returncode}):\n{block}\n--- output:\n{output}"
        return output

    for block in blocks:
        names.extend(name for name in ASSIGNMENT.findall(block) if name not in names)
        deadline = time.monotonic() + RETRY_SECONDS
        while True:
            output = run(block)
            missing = unmatched(block, output)
            if not missing or not block.lstrip().startswith("sleep") or time.monotonic() > deadline:
                break
        assert not missing, f"the README promises {missing}\nfor the block:\n{block}\n--- it printed:\n{output}"
