"""Start-up checks: a busy port, a missing Java or jar, an unwritable data directory, each one line, nothing started."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from devstack import embedded_mongo, preflight
from devstack.embedded_mongo import free_port

ROOT = Path(__file__).resolve().parents[3]


def stack_args(tmp_path: Path, **ports: int) -> argparse.Namespace:
    chosen = {name: free_port() for name in ("http_port", "moto_port", "mongo_port", "ocm_port", "realtime_port")}
    return argparse.Namespace(**{**chosen, **ports}, data_dir=str(tmp_path / "data"))


@pytest.fixture
def busy_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_free_stack_has_no_problems(tmp_path):
    env = {"PATH": os.environ["PATH"]}
    found = preflight.problems(stack_args(tmp_path), env)
    assert found == [] or not embedded_mongo.LAUNCHER_JAR.exists(), found


def test_a_busy_port_is_named_with_its_fix(tmp_path, busy_port):
    found = preflight.check_ports(stack_args(tmp_path, http_port=busy_port), {})
    assert found == [f"port {busy_port} is in use (LOCAL_HTTP_PORT or --http-port to choose another)"]


def test_two_options_on_one_port_are_refused(tmp_path):
    port = free_port()
    found = preflight.check_ports(stack_args(tmp_path, moto_port=port, realtime_port=port), {})
    assert found == [f"--realtime-port and --moto-port are both port {port} "
                     "(LOCAL_REALTIME_PORT or --realtime-port to choose another)"]


def test_ports_of_services_not_started_are_not_checked(tmp_path, busy_port):
    args = stack_args(tmp_path, mongo_port=busy_port, ocm_port=busy_port)
    assert preflight.check_ports(args, {"MONGODB_URI": "mongodb://db/", "OCM_API_URL": "https://ocm"}) == []


def test_java_missing_names_the_fix(tmp_path):
    [problem] = preflight.check_java({"PATH": str(tmp_path)})
    assert problem.startswith("java is not on PATH (install Java 17+")


def test_old_java_is_refused(tmp_path):
    fake = tmp_path / "java"
    fake.write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    fake.chmod(0o755)
    [problem] = preflight.check_java({"PATH": str(tmp_path)})
    assert "is Java 11; the embedded MongoDB needs Java 17+" in problem
    assert preflight.java_version(str(fake)) == 11


@pytest.mark.skipif(preflight.check_java({"PATH": os.environ["PATH"]}) != [], reason="needs Java 17+ and the jar")
def test_missing_jar_says_make_mongo_java_server(tmp_path, monkeypatch):
    monkeypatch.setattr(embedded_mongo, "LAUNCHER_JAR", tmp_path / "missing.jar")
    [problem] = preflight.check_java({"PATH": os.environ["PATH"]})
    assert problem.startswith("the embedded MongoDB is not built") and "make mongo-java-server" in problem


def test_a_data_directory_that_cannot_be_made_is_named(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    [problem] = preflight.check_data_dir(blocker / "data")
    assert problem.startswith(f"data directory {blocker / 'data'} is not writable") and "--data-dir" in problem


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_data_directory_is_named(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        [problem] = preflight.check_data_dir(locked)
        assert problem.startswith(f"data directory {locked} is not writable")
        assert "--data-dir" in problem
    finally:
        locked.chmod(0o700)


def test_python_m_devstack_on_a_busy_port_prints_one_line_and_starts_nothing(tmp_path, busy_port):
    ports = {name: free_port() for name in ("moto", "mongo", "ocm", "realtime")}
    argv = [sys.executable, "-m", "devstack", "--http-port", str(busy_port), "--data-dir", str(tmp_path / "d"),
            *[arg for name, port in ports.items() for arg in (f"--{name}-port", str(port))]]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "OCM_", "LOCAL_"))}
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    lines = (done.stdout + done.stderr).splitlines()
    assert done.returncode == 2, lines
    assert lines == [f"[devstack] cannot start: port {busy_port} is in use "
                     "(LOCAL_HTTP_PORT or --http-port to choose another)"]
    # nothing listens on the stack's other ports: no child was started
    assert not any(preflight.port_in_use(port) for port in ports.values())
    assert not (tmp_path / "d" / "devstack.json").exists()
