"""Shared fixtures: the embedded store, settings, moto, and the whole local stack.

- ``embedded_mongo`` (session): one mongo-java-server (memory backend) per xdist worker.
- ``db``: a fresh database per test, dropped afterwards. Tests marked
  ``mongodb`` run a second time against ``MONGODB_URI`` when it is set, and
  are skipped there with a reason otherwise.
- ``settings``: test settings; the same values are put in ``os.environ`` so
  ``chalicelib.bootstrap`` (used by entry modules) sees them too.
- ``aws``: moto ``mock_aws`` with the bus, queues and rules provisioned by the
  same ``appsync.infra`` code the deploy step and local stack use.
- ``local_stack`` (session): ``python -m devstack`` as a subprocess on free
  ports (``devstack/stack_process.py``), driven over HTTP like a client would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from chalicelib import bootstrap  # noqa: E402
from chalicelib.events.queues import StageQueues  # noqa: E402
from chalicelib.sections import StageSettings, load_stage_settings  # noqa: E402
from devstack.embedded_mongo import EmbeddedMongo  # noqa: E402
from devstack.pump import drain_queue, queue_behind_rules  # noqa: E402
from devstack.stack_client import StackClient  # noqa: E402
from devstack.stack_process import StackProcess, start_stack  # noqa: E402

TEST_ENV = {
    "JUCR_STAGE": "test",
    "JUCR_APP_NAME": "jucr",
    "EVENT_BUS_NAME": "jucr-test",
    "AWS_DEFAULT_REGION": "eu-central-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_ENDPOINT_URL": "",
    "BCRYPT_COST": "4",
    "WALLET_OPENING_BALANCE": "50.00",
    "SQS_BACKOFF_BASE_SECONDS": "0",
    "OCM_SYNC_SCHEDULE": "rate(6 hours)",
    "POWERTOOLS_METRICS_NAMESPACE": "JUCR",
    "POWERTOOLS_DEV": "false",
}


@pytest.fixture(scope="session")
def embedded_mongo(tmp_path_factory) -> EmbeddedMongo:
    server = EmbeddedMongo(tmp_path_factory.mktemp("mongo")).start()
    yield server
    server.stop()


def pytest_generate_tests(metafunc):
    if "db_backend" in metafunc.fixturenames:
        backends = ["embedded"]
        if metafunc.definition.get_closest_marker("mongodb"):
            backends.append("mongodb")
        metafunc.parametrize("db_backend", backends, scope="function")


@pytest.fixture
def db_backend(request) -> str:  # parametrized by pytest_generate_tests
    return request.param


@pytest.fixture
def mongo_uri(db_backend, request) -> str:
    if db_backend == "mongodb":
        uri = REAL_MONGODB_URI
        if not uri:
            pytest.skip("real MongoDB run: set MONGODB_URI to run tests marked mongodb against a real server")
        return uri
    return request.getfixturevalue("embedded_mongo").uri


# Read once, before any test's ``settings`` fixture points MONGODB_URI at the embedded store.
REAL_MONGODB_URI = os.environ.get("MONGODB_URI") or None


@pytest.fixture
def settings(monkeypatch, mongo_uri) -> StageSettings:
    env = dict(TEST_ENV, MONGODB_URI=mongo_uri, MONGODB_DB=f"t_{uuid.uuid4().hex[:12]}")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    bootstrap.reset()
    yield load_stage_settings(env)
    bootstrap.reset()


@pytest.fixture
def db(settings):
    """A fresh database for this test (embedded, or real MongoDB when marked and configured)."""
    from pymongo import MongoClient

    client = MongoClient(settings.store.mongodb_uri, serverSelectionTimeoutMS=5000, tz_aware=True)
    database = client[settings.store.mongodb_db]
    yield database
    client.drop_database(settings.store.mongodb_db)
    client.close()


@dataclass
class AwsStandIn:
    settings: StageSettings

    def client(self, name: str):
        return bootstrap.aws_client(name)

    @cached_property
    def queues(self) -> StageQueues:
        """The stage's queues by short name, through the runtime's own SQS adapter."""
        return StageQueues(self.client("sqs"), self.settings.core.queue_name)

    def queue_url(self, short: str) -> str:
        return self.queues.url(short)

    def receive_all(self, short: str, wait: int = 0) -> list[dict]:
        """Drain a queue (messages are deleted), for assertions."""
        return drain_queue(self.client("sqs"), self.queue_url(short), wait)

    def capture(self, name: str, pattern: dict[str, Any]) -> Callable[[], list[dict]]:
        """A queue behind a bus rule ``name`` matching ``pattern``; the returned call drains the event details.

        What a subscriber of those events would receive (the Session Service, a client), for assertions.
        """
        url, _ = queue_behind_rules(self.client, self.settings.core.event_bus_name, name, {name: pattern}, "capture")
        return lambda: [json.loads(m["Body"])["detail"] for m in drain_queue(self.client("sqs"), url)]


@pytest.fixture
def aws(settings, monkeypatch):
    """moto in process, with the messaging topology provisioned."""
    from moto import mock_aws

    from appsync.infra import Infra

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        bootstrap.reset()
        stage = load_stage_settings()
        Infra(bootstrap.aws_client, stage).apply_messaging()
        yield AwsStandIn(stage)
        bootstrap.reset()


# --- the local stack ------------------------------------------------------------------------


@dataclass
class LocalStack(StackClient):
    """The session's stack: ``graphql``, ``put_event`` and ``wait_for`` come from ``StackClient``."""

    log_path: Path = Path()
    process: subprocess.Popen | None = None
    data_dir: Path = Path()
    realtime_url: str = ""  # the AppSync real-time endpoint (ws://), from devstack.json
    offsets: dict[str, int] = field(default_factory=dict)

    def _post(self, path: str, payload: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        return self.post(path, payload, headers)  # the name the tests call

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cli(self, *args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run ``python -m chalicelib ...`` against this stack."""
        return subprocess.run([sys.executable, "-m", "chalicelib", *args], cwd=PROJECT_ROOT, env=self.env,
                              input=input, capture_output=True, text=True, timeout=timeout)

    @classmethod
    def of(cls, stack: StackProcess) -> LocalStack:
        # The CLI reads this stack's state file, never a developer's own `make run` on the same machine.
        env = dict(stack.client_env(), JUCR_LOCAL_STACK_STATE=str(stack.state_file))
        return cls(stack.base_url, env, stack.log_path, stack.process, stack.data_dir, stack.realtime_url)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory) -> LocalStack:
    stack = start_stack(tmp_path_factory.mktemp("devstack"),
                        {"LOCAL_OCM_SYNC_INTERVAL": os.environ.get("TEST_LOCAL_OCM_SYNC_INTERVAL", "3600")})
    try:
        yield LocalStack.of(stack)
    finally:
        stack.stop()  # SIGTERM lets devstack stop the store, moto and chalice local too


def pytest_collection_modifyitems(config, items):
    """Keep every end-to-end test on one xdist worker, so one local stack serves them all."""
    for item in items:
        path = str(item.fspath).replace("\\", "/")
        if "/e2e/" in path or ("/security/" in path and "local_stack" in getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("e2e"))
            item.add_marker(pytest.mark.e2e)
