"""The embedded MongoDB: mongo-java-server 1.47.0 run by ``tools/mongo-java-server``.

Built by ``make mongo-java-server`` (Maven Central) into ``.local/mongo-java-server``.
Used by the local stack (H2 file backend, data survives a restart), the test suite
(memory backend, a fresh database per test) and the benchmarks; never in Lambda.
Production points ``MONGODB_URI`` at MongoDB.

The server reads nothing from its standard input but stops when it closes, so it
dies with the process that started it, even one killed by SIGKILL.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from pymongo import MongoClient

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = PROJECT_ROOT / ".local" / "mongo-java-server"
LAUNCHER_JAR = BUILD_DIR / "embedded-mongo-1.jar"
MAIN_CLASS = "jucr.embedded.Launcher"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launcher_command(port: int, h2_file: Path | None = None, heap: str | None = None) -> list[str]:
    """The java command line; ``h2_file`` None means the memory backend.

    The heap defaults to 4 GB (``LOCAL_MONGO_HEAP`` overrides): 100,000 mirrored stations
    fill 2 GB of the memory backend and GC pauses then reach seconds. The JVM takes only
    what it uses, so a test database of a few documents stays small.
    """
    heap = heap or os.environ.get("LOCAL_MONGO_HEAP", "4g")
    if not LAUNCHER_JAR.exists():
        raise RuntimeError(f"{LAUNCHER_JAR} is missing: run `make mongo-java-server` first")
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("java (17+) is not on PATH: the embedded MongoDB needs it")
    classpath = f"{LAUNCHER_JAR}:{BUILD_DIR / 'lib'}/*"
    backend = ["h2", str(h2_file)] if h2_file else ["memory"]
    # SerialGC and a small tiered JIT keep start-up short on a 2-core machine.
    return [java, f"-Xmx{heap}", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", classpath,
            MAIN_CLASS, str(port), *backend]


class EmbeddedMongo:
    """A mongo-java-server process on 127.0.0.1; ``uri`` is ready once ``start`` returns.

    ``h2_file`` set: the H2 backend in that file (the local stack); unset: memory.
    """

    def __init__(self, data_dir: Path, port: int | None = None, log_file: Path | None = None,
                 h2_file: Path | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.log_file = log_file or self.data_dir / "mongo-java-server.log"
        self.h2_file = Path(h2_file) if h2_file else None
        self.process: subprocess.Popen | None = None
        self.started_in: float | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 60.0) -> EmbeddedMongo:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.h2_file:
            self.h2_file.parent.mkdir(parents=True, exist_ok=True)
        command = launcher_command(self.port, self.h2_file)
        began = time.monotonic()
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = began + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the embedded MongoDB exited early; see {self.log_file}")
            try:
                with MongoClient(self.uri, serverSelectionTimeoutMS=300) as client:
                    client.admin.command("ping")
                self.started_in = time.monotonic() - began
                return self
            except Exception:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the embedded MongoDB did not answer on {self.uri} within {timeout}s")

    def stop(self) -> None:
        """Stop the server; SIGTERM runs its shutdown hook, which closes (commits) an H2 file."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process and self.process.stdin:
            self.process.stdin.close()
        self.process = None
