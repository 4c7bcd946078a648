"""OCM fixtures: the stand-in API over the recorded records, the mirror repository, deps builders."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from pymongo import monitoring

from chalicelib.events.publisher import RecordingPublisher
from chalicelib.ocm.client import ClientConfig, OcmClient
from chalicelib.ocm.repository import INDEXES, MirrorRepository
from chalicelib.ocm.sync import SyncDeps, SyncOptions
from chalicelib.store import ensure_indexes
from devstack.ocm_standin import load_records, start_standin

API_KEY = "test-key-123"
PAGE = 500


@pytest.fixture(scope="session")
def fixture_records_master() -> list[dict]:
    return load_records()


@pytest.fixture
def fixture_records(fixture_records_master) -> list[dict]:
    return copy.deepcopy(fixture_records_master)


@pytest.fixture
def start_feed(fixture_records_master):
    """``start_feed(synthetic=N)``: another stand-in on its own port (stopped after the test)."""
    started = []

    def start(records: list[dict] | None = None, synthetic: int | None = None):
        records = copy.deepcopy(fixture_records_master) if records is None else records
        server, thread = start_standin("127.0.0.1", 0, api_key=API_KEY, records=records, synthetic=synthetic)
        started.append((server, thread))
        return server

    yield start
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def standin(start_feed, fixture_records):
    return start_feed(fixture_records)


def make_client(server, key: str = API_KEY, retries: int = 3) -> OcmClient:
    return OcmClient(ClientConfig(base_url=server.url, api_key=key, timeout_seconds=10, retries=retries,
                                  backoff_factor=0.01, backoff_jitter=0.01))


@pytest.fixture
def repo(db) -> MirrorRepository:
    ensure_indexes(db, INDEXES)
    return MirrorRepository(db)


class Clock:
    """A clock the test moves; starts now (the stand-in stamps edits with the real time)."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def deps(standin, repo, publisher, clock):
    client = make_client(standin)
    yield SyncDeps(source=client, repo=repo, publisher=publisher, clock=clock)
    client.close()


def options(**kwargs) -> SyncOptions:
    return SyncOptions(**{"page_size": PAGE, "min_margin_seconds": 0.0, **kwargs})


@pytest.fixture
def make_client_for():
    """``make_client_for(server, key=..., retries=...)``: a client with millisecond back-off."""
    return make_client


@pytest.fixture
def opts():
    """``opts(**overrides)``: SyncOptions with the tests' page size and no time margin."""
    return options


class CommandCounter(monitoring.CommandListener):
    """Counts commands per name on one client, so tests can assert round trips and writes."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.targets: list[tuple[str, str]] = []

    def started(self, event) -> None:
        self.commands.append(event.command_name)
        self.targets.append((event.command_name, str(event.command.get(event.command_name))))

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass

    def count(self, *names: str) -> int:
        return sum(1 for c in self.commands if c in names)

    def on(self, collection: str, *names: str) -> int:
        """Commands of these names sent to ``collection``."""
        return sum(1 for name, target in self.targets if target == collection and name in names)

    def reset(self) -> None:
        self.commands.clear()
        self.targets.clear()


@pytest.fixture
def counted_repo(settings):
    """A repository on its own client with a command listener attached."""
    from pymongo import MongoClient

    counter = CommandCounter()
    client = MongoClient(settings.store.mongodb_uri, tz_aware=True, event_listeners=[counter])
    db = client[settings.store.mongodb_db]
    ensure_indexes(db, INDEXES)
    counter.reset()
    yield MirrorRepository(db), counter
    client.close()
