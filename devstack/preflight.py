"""What the local stack checks before it starts anything: ports, Java, the built jar, the data directory.

Each failed check is one line naming the problem and the fix. Checking first matters
because a half-started stack misleads: on a busy port the other stack's servers answer
the readiness probes, so this one would print ``ready.`` and then fail loudly, with
children already running. Nothing here starts a process except ``java -version``.
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from devstack import embedded_mongo

MIN_JAVA = 17
# option name -> the environment variable that sets it, for the fix's wording.
PORT_OPTIONS = {"http_port": "LOCAL_HTTP_PORT", "moto_port": "LOCAL_MOTO_PORT", "mongo_port": "LOCAL_MONGO_PORT",
                "ocm_port": "LOCAL_OCM_PORT", "realtime_port": "LOCAL_REALTIME_PORT"}


def _flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def ports_needed(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, int]:
    """The ports this stack will listen on: MongoDB and the OCM stand-in only when they start."""
    wanted = dict(PORT_OPTIONS)
    if env.get("MONGODB_URI"):
        wanted.pop("mongo_port")
    if env.get("OCM_API_KEY") or env.get("OCM_API_URL"):
        wanted.pop("ocm_port")
    return {option: int(getattr(args, option)) for option in wanted}


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something listens on ``host:port`` (a bind is what the servers will do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR as the servers set it: a socket in TIME_WAIT is no reason to refuse.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def check_ports(args: argparse.Namespace, env: Mapping[str, str]) -> list[str]:
    problems, seen = [], {}
    for option, port in ports_needed(args, env).items():
        fix = f"{PORT_OPTIONS[option]} or {_flag(option)} to choose another"
        if port in seen:
            problems.append(f"{_flag(option)} and {_flag(seen[port])} are both port {port} ({fix})")
        elif port_in_use(port):
            problems.append(f"port {port} is in use ({fix})")
        seen.setdefault(port, option)
    return problems


def java_version(java: str) -> int | None:
    """The major version ``java -version`` reports (``1.8`` is 8), None when unreadable."""
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if not found:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


def check_java(env: Mapping[str, str]) -> list[str]:
    """The embedded MongoDB needs Java 17+ and its jar; neither when ``MONGODB_URI`` points elsewhere."""
    if env.get("MONGODB_URI"):
        return []
    fix_uri = "or set MONGODB_URI to use another MongoDB"
    java = shutil.which("java", path=env.get("PATH"))
    if java is None:
        return [f"java is not on PATH (install Java {MIN_JAVA}+ for the embedded MongoDB, {fix_uri})"]
    version = java_version(java)
    if version is None or version < MIN_JAVA:
        seen = "an unreadable version" if version is None else f"Java {version}"
        return [f"{java} is {seen}; the embedded MongoDB needs Java {MIN_JAVA}+ (put it first on PATH, {fix_uri})"]
    if not embedded_mongo.LAUNCHER_JAR.exists():
        return [f"the embedded MongoDB is not built: {embedded_mongo.LAUNCHER_JAR} is missing "
                "(run `make mongo-java-server`, or `make run`, which builds it)"]
    return []


def check_data_dir(data_dir: Path) -> list[str]:
    """The directory (created if missing) and the files already in it must be readable and writable."""
    fix = "fix its permissions or choose another with --data-dir"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".preflight-"):
            pass
    except OSError as exc:
        return [f"data directory {data_dir} is not writable: {exc.strerror or exc} ({fix})"]
    # Two levels (the store's folder and its files) are what start-up opens; deeper trees are the
    # unpacked package, rebuilt when needed.
    for path in sorted([*data_dir.glob("*"), *data_dir.glob("*/*")]):
        if not os.access(path, os.R_OK | os.W_OK | (os.X_OK if path.is_dir() else 0)):
            return [f"{path} in the data directory is not readable and writable ({fix})"]
    return []


def check_package_tools(env: Mapping[str, str]) -> list[str]:
    """``LOCAL_LAMBDAS=package`` runs functions under the Lambda emulator (built with Go) and its runtime."""
    if env.get("LOCAL_LAMBDAS") != "package":
        return []
    from devstack import lambdas

    missing = lambdas.missing_tools()
    return [f"LOCAL_LAMBDAS=package needs {', '.join(missing)} (`make run` builds them; the emulator needs Go)"] \
        if missing else []


def problems(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> list[str]:
    """Every reason the stack cannot start, one line each; empty when it can."""
    env = os.environ if env is None else env
    return [*check_ports(args, env), *check_java(env), *check_data_dir(Path(args.data_dir).resolve()),
            *check_package_tools(env)]
