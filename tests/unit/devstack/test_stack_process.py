"""The stack helper: readiness by the state file of this very child, and a stop that leaves nothing running."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from devstack.stack_process import StartFailed, _state_of, distinct_free_ports, spawn, wait_until

# A child that ignores SIGTERM and starts a grandchild that does too: what a stack hung on its
# way down looks like. It prints the grandchild's pid so the test can look for it afterwards.
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c",
                          "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"],
                         start_new_session=True)
print(child.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process trees are read from /proc")
def test_stop_kills_a_child_that_ignores_sigterm_and_what_it_started(tmp_path):
    child = spawn([sys.executable, "-c", STUBBORN], tmp_path / "child.log")
    grandchild = int(wait_until(child, lambda: child.logs().strip(), 20, "the stubborn child"))
    assert _alive(grandchild)

    child.stop(grace=1)

    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not child.running() and not _alive(grandchild)


def test_a_child_that_exits_early_fails_the_start_with_its_log(tmp_path):
    child = spawn([sys.executable, "-c", "print('cannot start: port taken'); raise SystemExit(2)"],
                  tmp_path / "child.log")
    with pytest.raises(StartFailed, match="exited with 2") as info:
        wait_until(child, lambda: None, 20, "the stack")
    assert "cannot start: port taken" in str(info.value)


def test_a_child_not_ready_in_time_is_stopped(tmp_path):
    child = spawn([sys.executable, "-c", "import time; time.sleep(600)"], tmp_path / "child.log")
    with pytest.raises(StartFailed, match="was not ready within"):
        wait_until(child, lambda: None, 0.5, "the stack")
    assert not child.running()


def test_ready_only_once_the_state_file_is_complete_and_this_childs(tmp_path):
    state = tmp_path / "devstack.json"
    assert _state_of(state, 42) is None  # not written yet
    state.write_text('{"pid": 42, "graphql": "http://127.0.0.1:1/gr')  # half written
    assert _state_of(state, 42) is None
    state.write_text(json.dumps({"pid": os.getpid(), "graphql": "x"}))  # another process's stack
    assert _state_of(state, 42) is None
    state.write_text(json.dumps({"pid": 42, "graphql": "x"}))
    assert _state_of(state, 42) == {"pid": 42, "graphql": "x"}


def test_ports_are_all_different():
    ports = distinct_free_ports([f"part-{i}" for i in range(20)])
    assert len(ports) == 20 and len(set(ports.values())) == 20
