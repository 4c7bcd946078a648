"""The embedded MongoDB: FerretDB v1.24.2 with its SQLite backend.

Built by ``make ferretdb`` from the Go module proxy into ``.local/bin`` (see
``tools/ferretdb``). Used by the local stack and by the test session; never in
Lambda. Production points ``MONGODB_URI`` at MongoDB.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from pymongo import MongoClient

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FERRETDB_BIN = PROJECT_ROOT / ".local" / "bin" / "ferretdb"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedMongo:
    """A FerretDB process on 127.0.0.1; ``uri`` is ready once ``start`` returns."""

    def __init__(self, data_dir: Path, port: int | None = None, log_file: Path | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.log_file = log_file or self.data_dir / "ferretdb.log"
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 30.0) -> EmbeddedMongo:
        if not FERRETDB_BIN.exists():
            raise RuntimeError(f"{FERRETDB_BIN} is missing: run `make ferretdb` first")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_file, "ab")
        self.process = subprocess.Popen(
            [str(FERRETDB_BIN), "--listen-addr", f"127.0.0.1:{self.port}", "--data-dir", str(self.data_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ferretdb exited early; see {self.log_file}")
            try:
                with MongoClient(self.uri, serverSelectionTimeoutMS=300) as client:
                    client.admin.command("ping")
                return self
            except Exception:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"ferretdb did not answer on {self.uri} within {timeout}s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
