"""Run the functions of ``deployment.zip`` the way Lambda runs them, and one seam to call a function by name.

Each function gets its own AWS Lambda Runtime Interface Emulator (``aws-lambda-rie``, built by
``make lambda-rie``) running ``awslambdaric`` (``make lambda-runtime``) on the unzipped package.
The interpreter is the base Python with ``-S`` and a clean environment, so ``sys.path`` holds only
the package, the runtime client and the standard library, as in Lambda: an import that works only
from the checkout (``appsync``, ``devstack``, a dev dependency) fails here as it would in AWS.
``PYTHONDONTWRITEBYTECODE`` because ``/var/task`` is read-only in Lambda: every cold start compiles.

The emulator starts the runtime on the first invoke, so starting one per function is cheap; its
``INIT REPORT(durationMs: ...)`` line is Lambda's Init Duration (the REPORT line's is not: the
emulator's init call returns before the runtime is up).

``post_event`` invokes an emulator by URL; ``devstack.package_mode`` wires this into the local stack.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.contracts.errors import ApiError
from devstack.embedded_mongo import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RIE_BIN = PROJECT_ROOT / ".local" / "bin" / "aws-lambda-rie"
RUNTIME_DIR = PROJECT_ROOT / ".local" / "lambda-runtime"
PACKAGE_DIR = PROJECT_ROOT / ".local" / "package"
INVOKE_PATH = "/2015-03-31/functions/function/invocations"
# What Chalice copies into the zip besides the wheels of requirements.txt: a change here means a stale zip.
PACKAGED_SOURCES = ("app.py", "chalicelib", "requirements.txt", ".chalice/config.json")

_INIT_REPORT = re.compile(r"INIT REPORT\(durationMs: ([0-9.]+)\)")
_REPORT = re.compile(r"^REPORT RequestId: \S+\t(?:Init Duration: [0-9.]+ ms\t)?Duration: ([0-9.]+) ms", re.MULTILINE)


class FunctionError(ApiError):
    """A function's error response; an ``ApiError`` because AppSync, like the stand-in, reports its
    ``errorType`` and ``errorMessage`` as the GraphQL error's."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self._error_type = error_type

    @property
    def error_type(self) -> str:
        return self._error_type


@dataclass(frozen=True)
class FunctionSpec:
    """One function as the SAM template of ``chalice package`` declares it."""

    name: str
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str]


def read_functions(sam_path: Path) -> dict[str, FunctionSpec]:
    """Functions by their app.py name, from ``sam.json`` (handler, timeout, memory, stage variables)."""
    resources = json.loads(Path(sam_path).read_text())["Resources"].values()
    functions = [r["Properties"] for r in resources if r.get("Type") == "AWS::Serverless::Function"]
    return {p["Handler"].split(".", 1)[1]: FunctionSpec(
        p["Handler"].split(".", 1)[1], p["Handler"], int(p["Timeout"]), int(p["MemorySize"]),
        dict((p.get("Environment") or {}).get("Variables") or {})) for p in functions}


def package_is_stale(package_dir: Path = PACKAGE_DIR) -> bool:
    """True when the zip is missing or older than a file Chalice would put in it."""
    zip_path = package_dir / "deployment.zip"
    if not zip_path.exists():
        return True
    built = zip_path.stat().st_mtime
    for source in PACKAGED_SOURCES:
        path = PROJECT_ROOT / source
        files = path.rglob("*") if path.is_dir() else [path]
        if any(f.is_file() and "__pycache__" not in f.parts and f.stat().st_mtime > built for f in files):
            return True
    return False


def build_package(package_dir: Path = PACKAGE_DIR) -> Path:
    """``chalice package --stage prod`` (what ``make package`` runs); returns the zip's path."""
    chalice = Path(sys.executable).with_name("chalice")
    env = dict(os.environ, AWS_DEFAULT_REGION=os.environ.get("AWS_DEFAULT_REGION", "eu-central-1"))
    subprocess.run([str(chalice), "package", "--stage", "prod", str(package_dir)], cwd=PROJECT_ROOT, env=env,
                   check=True, capture_output=True)
    return package_dir / "deployment.zip"


def unpack(zip_path: Path, dest: Path) -> Path:
    """Unzip into ``dest`` (Lambda's /var/task), keeping the executable bits of compiled modules."""
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            target = archive.extract(info, dest)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(target, mode)
    return dest


def base_python() -> str:
    """The interpreter under the venv: with ``-S`` it sees no site-packages at all, the venv's included."""
    return getattr(sys, "_base_executable", None) or sys.executable


def missing_tools() -> list[str]:
    """What ``make`` must build before functions can run from the package."""
    wanted = {RIE_BIN: "make lambda-rie", RUNTIME_DIR / "awslambdaric": "make lambda-runtime"}
    return [f"{path} ({command})" for path, command in wanted.items() if not path.exists()]


class Emulator:
    """One function under one emulator: ``invoke`` posts an event and returns the function's answer."""

    def __init__(self, spec: FunctionSpec, task_root: Path, env: dict[str, str], log_path: Path,
                 runtime_dir: Path = RUNTIME_DIR, extra_path: tuple[Path, ...] = ()) -> None:
        self.spec, self.task_root, self.log_path = spec, Path(task_root), Path(log_path)
        self.port, self.api_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}{INVOKE_PATH}"
        self.env = self._environment(env, runtime_dir, extra_path)
        self.process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def _environment(self, overrides: dict[str, str], runtime_dir: Path, extra_path: tuple[Path, ...]) -> dict:
        region = overrides.get("AWS_DEFAULT_REGION", "eu-central-1")
        path = [str(self.task_root), str(runtime_dir), *map(str, extra_path)]  # /var/task first, as in Lambda
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": str(self.task_root), "LAMBDA_RUNTIME_DIR": str(runtime_dir),
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11", "AWS_REGION": region, "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": self.spec.name, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.spec.memory),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(self.spec.timeout),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.spec.name}", "_HANDLER": self.spec.handler,
            "PYTHONPATH": os.pathsep.join(path), "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            **self.spec.environment, **overrides,
        }

    def command(self) -> list[str]:
        return [str(RIE_BIN), "--runtime-interface-emulator-address", f"127.0.0.1:{self.port}",
                "--runtime-api-address", f"127.0.0.1:{self.api_port}", "--log-level", "info",
                base_python(), "-S", "-m", "awslambdaric", self.spec.handler]

    def start(self, timeout: float = 10.0) -> Emulator:
        if self.process is not None and self.process.poll() is None:
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command(), cwd=self.task_root, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"emulator for {self.spec.name} did not start; see {self.log_path}") from None
                time.sleep(0.05)

    def invoke(self, event: Any) -> Any:
        """The function's JSON answer; its error response raises :class:`FunctionError`."""
        with self._lock:
            if self.process is None:
                self.start()
        return post_event(self.url, event, timeout=self.spec.timeout + 30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def init_ms(self) -> float | None:
        """Lambda's Init Duration: runtime start to its first request for work (None before the first invoke)."""
        found = _INIT_REPORT.search(self.log())
        return float(found.group(1)) if found else None

    def durations_ms(self) -> list[float]:
        """Duration of each invocation so far, from the REPORT lines."""
        return [float(d) for d in _REPORT.findall(self.log())]

    def stop(self) -> None:
        """Stop the emulator and its runtime, by its process group: a runtime outlives an emulator that died."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None


class PackageFunctions:
    """Every function of one unpacked package, each under its own emulator, started on first use."""

    def __init__(self, task_root: Path, specs: dict[str, FunctionSpec], env: dict[str, str], log_dir: Path,
                 runtime_dir: Path = RUNTIME_DIR) -> None:
        self.task_root, self.specs, self.env = Path(task_root), specs, dict(env)
        self.log_dir, self.runtime_dir = Path(log_dir), runtime_dir
        self.emulators: dict[str, Emulator] = {}
        self._lock = threading.Lock()

    def emulator(self, name: str, **overrides: str) -> Emulator:
        """The function's emulator; ``overrides`` give a separate instance with a changed environment."""
        key = name + "".join(f"|{k}={v}" for k, v in sorted(overrides.items()))
        with self._lock:
            if key not in self.emulators:
                suffix = f"-{len(self.emulators)}" if overrides else ""
                self.emulators[key] = Emulator(self.specs[name], self.task_root, {**self.env, **overrides},
                                               self.log_dir / f"{name}{suffix}.log", self.runtime_dir)
            return self.emulators[key]

    def start_all(self) -> dict[str, str]:
        """Start an emulator per function (the runtimes start on first invoke); returns name -> invoke URL."""
        return {name: self.emulator(name).start().url for name in self.specs}

    def invoke(self, name: str, event: Any) -> Any:
        return self.emulator(name).invoke(event)

    def close(self) -> None:
        for emulator in self.emulators.values():
            emulator.stop()


# --- the seam: call a function by name -----------------------------------------------------------------

def post_event(url: str, event: Any, timeout: float = 930) -> Any:
    """Invoke the emulator at ``url``; an error response raises :class:`FunctionError`.

    One emulator is one Lambda instance, which runs one invocation at a time, and this emulator
    crashes (nil pointer, after "ReserveFailed: AlreadyReserved") when a second one arrives. So
    every call takes a lock on a file named after the URL: threads and processes (the stack and
    ``chalice local`` both call the authorizer) take turns, as requests queue for one instance.
    """
    lock_path = Path(tempfile.gettempdir()) / f"jucr-lambda-{urllib.parse.urlsplit(url).port}.lock"
    request = urllib.request.Request(url, data=json.dumps(event).encode(), method="POST",  # noqa: S310
                                     headers={"Content-Type": "application/json"})
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback only
            raw = response.read()
    result = json.loads(raw) if raw else None
    if isinstance(result, dict) and {"errorType", "errorMessage", "stackTrace"} <= set(result):
        raise FunctionError(str(result["errorType"]), str(result["errorMessage"]))
    return result
