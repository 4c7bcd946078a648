"""Start the local stack, or ``moto_server`` alone, as a child process; wait for it; stop it and all it started.

One recipe for the test fixtures, the package suite, the benchmarks and the chaos run, so
none of them keeps its own start-up loop:

- ``start_stack``: ``python -m devstack`` on free ports with its own data dir. Ready means
  ``<data dir>/devstack.json`` holds this child's pid: ``devstack/run.py`` writes that file
  only after the store, moto, ``chalice local``, the pumps and the real-time endpoint all
  answered, so no log line has to be scraped. A stale file is removed first.
- ``start_moto``: ``moto_server`` on a loopback port; ready when ``/moto-api/`` answers.
- ``ChildProcess.stop``: SIGTERM first (devstack then stops its store, moto and ``chalice
  local`` itself); anything of the child's process tree still alive after the grace period
  is killed, so a stack that hangs on its way down leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from devstack.embedded_mongo import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STACK_PORTS = ("http", "moto", "mongo", "ocm", "realtime")
# A child stack must not inherit the developer's shell's AWS account, MongoDB, OCM key or stage.
DROPPED_PREFIXES = ("AWS_", "MONGODB_", "OCM_", "JUCR_")
# Unbuffered, so a failed start's log is complete; a one-second back-off keeps retries quick.
STACK_DEFAULTS = {"PYTHONUNBUFFERED": "1", "SQS_BACKOFF_BASE_SECONDS": "1"}
LOG_TAIL_CHARS = 4000

T = TypeVar("T")


class StartFailed(RuntimeError):
    """The child exited, or did not become ready in time; the message ends with its log's tail."""


@dataclass
class ChildProcess:
    """A started child, its log file, and a stop that leaves none of its processes behind."""

    process: subprocess.Popen
    log_path: Path

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM, wait ``grace`` seconds, then SIGKILL the child and whatever it started that still runs."""
        tree = _descendants(self.process.pid) if self.running() else []
        if self.running():
            self.process.terminate()
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        _kill_leftovers(tree)
        if self.process.stdin:  # a child that stops when its stdin closes (the embedded store)
            self.process.stdin.close()


def spawn(argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None, *, append: bool = False,
          stdin: int | None = None, cwd: Path = PROJECT_ROOT) -> ChildProcess:
    """Start ``argv`` in a session of its own (Ctrl-C in a terminal reaches us, never it directly).

    ``append`` keeps an existing log (a restarted store); otherwise the log starts empty, so
    what a caller reads back is this run's.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab" if append else "wb") as log:
        process = subprocess.Popen(list(argv), cwd=cwd, env=None if env is None else dict(env), stdin=stdin,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return ChildProcess(process, log_path)


def wait_until(child: ChildProcess, ready: Callable[[], T | None], timeout: float, what: str,
               interval: float = 0.2) -> T:
    """``ready()``'s first truthy value; the child exiting or ``timeout`` passing stops it and raises."""
    deadline = time.monotonic() + timeout
    try:
        while not (value := ready()):
            if not child.running() or time.monotonic() > deadline:
                code = child.process.returncode
                why = f"exited with {code}" if code is not None else f"was not ready within {timeout:g}s"
                raise StartFailed(f"{what} {why}; log {child.log_path}:\n{child.logs()[-LOG_TAIL_CHARS:]}")
            time.sleep(interval)
    except BaseException:  # Ctrl-C, SIGTERM turned KeyboardInterrupt, a test timeout: nothing may stay behind
        child.stop()
        raise
    return value


# --- moto_server ------------------------------------------------------------------------------------

@dataclass
class MotoServer(ChildProcess):
    url: str = ""


def start_moto(log_path: Path, port: int | None = None, timeout: float = 30.0, append: bool = False) -> MotoServer:
    """``moto_server`` on 127.0.0.1 (a free port unless given), ready once its API answers."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    child = spawn([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], log_path,
                  append=append)
    wait_until(child, lambda: _answers(f"{url}/moto-api/"), timeout, f"moto_server on {url}")
    return MotoServer(child.process, log_path, url)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback only
            return True
    except OSError:
        return False


# --- the whole local stack --------------------------------------------------------------------------

@dataclass
class StackProcess(ChildProcess):
    """A running ``python -m devstack``: its ports, the environment it got, and its ``devstack.json``."""

    data_dir: Path = Path()
    ports: dict[str, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"

    @property
    def realtime_url(self) -> str:
        return str(self.state.get("realtime", ""))

    @property
    def state_file(self) -> Path:
        return self.data_dir / "devstack.json"

    def client_env(self) -> dict[str, str]:
        """What a client of this stack runs with: its environment plus the settings the stack resolved."""
        return dict(self.env, **self.state.get("env", {}))


def stack_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without what must not leak into a child stack, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED_PREFIXES)}
    return {**env, **STACK_DEFAULTS, **(extra or {})}


def start_stack(data_dir: Path, extra_env: Mapping[str, str] | None = None, timeout: float = 120.0) -> StackProcess:
    """``python -m devstack`` on free ports in ``data_dir``; returns once its state file says it is ready."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = distinct_free_ports(STACK_PORTS)
    env = stack_env(extra_env)
    state_file = data_dir / "devstack.json"
    state_file.unlink(missing_ok=True)  # a previous run's file would look ready
    argv = [sys.executable, "-m", "devstack", "--data-dir", str(data_dir), "--log-format", "json",
            *[f"--{name}-port={port}" for name, port in ports.items()]]
    child = spawn(argv, data_dir / "stack.log", env)
    state = wait_until(child, lambda: _state_of(state_file, child.process.pid), timeout, "the local stack")
    return StackProcess(child.process, child.log_path, data_dir, ports, env, state)


def distinct_free_ports(names: Sequence[str]) -> dict[str, int]:
    """A free loopback port per name, all different: each socket stays bound until all are chosen.

    Picking them one at a time, each socket closed before the next, lets the kernel hand out
    the same port twice, and the stack then refuses to start (two parts on one port).
    """
    sockets = [socket.socket() for _ in names]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return {name: sock.getsockname()[1] for name, sock in zip(names, sockets, strict=True)}
    finally:
        for sock in sockets:
            sock.close()


def _state_of(path: Path, pid: int) -> dict[str, Any] | None:
    """The state file once it is complete and written by ``pid`` (a half-written file does not parse)."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and state.get("pid") == pid else None


# --- process trees (Linux /proc; elsewhere only the child itself is stopped) ------------------------------

def _descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, start time) of every process below ``pid``; the start time tells a reused pid apart."""
    children: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        stat = _stat(int(entry.name))
        if stat is not None:
            children.setdefault(stat[0], []).append(int(entry.name))
            started[int(entry.name)] = stat[1]
    found, todo = [], list(children.get(pid, []))
    while todo:
        current = todo.pop()
        found.append((current, started[current]))
        todo.extend(children.get(current, []))
    return found


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a live process; ``None`` when it is gone, a zombie, or unreadable."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()  # after "pid (comm) ": the name may hold spaces
    return None if fields[0] == "Z" else (int(fields[1]), fields[19])


def _kill_leftovers(tree: list[tuple[int, str]], grace: float = 5.0) -> None:
    alive = [pid for pid, began in tree if (_stat(pid) or (0, ""))[1] == began]
    for pid in alive:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in alive if _stat(pid) is not None]
    for pid in alive:
        _signal(pid, signal.SIGKILL)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # gone already, or no longer ours
