"""The chaos run's stack: its own ``python -m devstack``, the store fault, and a capture of the bus.

The stack is started by the one recipe the tests and benchmarks share
(``devstack/stack_process.py``) and driven through ``devstack/stack_client.py``; what is
added here is what only the chaos run does to it: take the embedded store away mid-run and
record every event billing and the reconciler publish.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.embedded_mongo import MAIN_CLASS
from devstack.pump import queue_behind_rules
from devstack.stack_client import StackClient
from devstack.stack_process import ChildProcess, StackProcess, spawn, start_stack

CAPTURED_SOURCES = ["jucr.billing", "jucr.dlq"]
# No scheduled OCM sync to compete with billing; re-driven dead letters come back after 2 s, not 30.
CHAOS_ENV = {"LOCAL_OCM_SYNC_INTERVAL": "off", "DLQ_REDRIVE_DELAY_SECONDS": "2"}


def say(message: str) -> None:
    print(f"[chaos] {message}", flush=True)


@dataclass
class ChaosStack(StackClient):
    """A started stack as a client sees it, plus the handle to stop it and to fault its store."""

    process: StackProcess | None = None
    restarted_store: ChildProcess | None = field(default=None, repr=False)

    @classmethod
    def start(cls, data_dir: Path, extra_env: dict[str, str], timeout: float = 120) -> ChaosStack:
        process = start_stack(data_dir, {**CHAOS_ENV, **extra_env}, timeout=timeout)
        return cls(process.base_url, process.client_env(), process)

    @property
    def data_dir(self) -> Path:
        return self.process.data_dir

    def logs(self) -> str:
        return self.process.logs()

    def queue_url(self, short: str) -> str:
        return self.queues.url(short)

    def stop(self) -> None:
        self.process.stop()
        if self.restarted_store is not None:
            self.restarted_store.stop(grace=10)

    # -- the store fault -------------------------------------------------------------------
    def store_pid(self) -> tuple[int, list[str]]:
        """The embedded MongoDB of this stack: the launcher started on our mongo port (from /proc)."""
        wanted = str(self.process.ports["mongo"])
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            args = [a.decode(errors="replace") for a in argv if a]
            if MAIN_CLASS in args and args[args.index(MAIN_CLASS) + 1:][:1] == [wanted]:
                return int(entry.name), args
        raise RuntimeError(f"no embedded MongoDB listens on port {wanted}")

    def take_store_down(self, seconds: float) -> dict[str, Any]:
        """Terminate the store, keep it down ``seconds``, start it again on the same port and data."""
        port = self.process.ports["mongo"]
        pid, argv = self.store_pid()
        started = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        while _port_open(port):
            if time.monotonic() - started > 10:
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        down_at = time.monotonic()
        time.sleep(seconds)
        # stdin is a pipe this process holds: the launcher stops when it closes (with us).
        self.restarted_store = spawn(argv, self.data_dir / "mongo-java-server.log", append=True,
                                     stdin=subprocess.PIPE)
        while not _port_open(port):
            if not self.restarted_store.running():
                raise RuntimeError("the embedded MongoDB did not restart; see mongo-java-server.log")
            time.sleep(0.05)
        return {"pid": pid, "newPid": self.restarted_store.process.pid,
                "downSeconds": round(time.monotonic() - down_at, 2)}


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Capture(threading.Thread):
    """A bus rule -> SQS queue in moto for ``jucr.billing``/``jucr.dlq``; every message drained and kept."""

    def __init__(self, stack: ChaosStack) -> None:
        super().__init__(name="capture", daemon=True)
        self.sqs = stack.client("sqs")
        name = f"{stack.env['JUCR_APP_NAME']}-{stack.env['JUCR_STAGE']}-chaos-capture"
        self.url, _ = queue_behind_rules(stack.client, stack.env["EVENT_BUS_NAME"], name,
                                         {name: {"source": CAPTURED_SOURCES}}, "capture")
        self.records: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.drain_once()
            except Exception as exc:  # noqa: BLE001 - keep capturing; moto may hiccup
                say(f"capture error {type(exc).__name__}: {exc}")
                time.sleep(0.5)

    def drain_once(self) -> int:
        """One receive; deleted in one batch call, since moto is the bottleneck of a long run."""
        got = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        now = time.time()
        for message in got:
            body = json.loads(message["Body"])
            with self.lock:
                self.records.append({"type": body.get("detail-type"), "detail": body.get("detail") or {},
                                     "capturedAt": now})
        if got:
            self.sqs.delete_message_batch(QueueUrl=self.url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
        return len(got)

    def finish(self) -> list[dict[str, Any]]:
        """Drain what is left (published at the very end), stop the thread, return everything captured."""
        while self.drain_once():
            pass
        self.stopping.set()
        self.join(timeout=5)
        return self.snapshot()

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.records)
