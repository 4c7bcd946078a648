"""Store round trips per sign-in and per refresh, counted by the driver's command monitor.

Each one is a network hop from the resolver Lambda; the numbers here are what the
docs/auth.md states, so a change that adds a hop has to change both.
"""

from __future__ import annotations

import datetime as dt

import pytest
from pymongo import MongoClient, monitoring

from chalicelib.auth import service
from chalicelib.auth.keys import KeyRing
from chalicelib.auth.repository import INDEXES, AuthRepository
from chalicelib.auth.service import AuthDeps, AuthPolicy
from chalicelib.auth.throttle import DEV_LOGIN_PEPPER, LoginThrottle
from chalicelib.contracts.errors import TooManyAttempts, Unauthorized
from chalicelib.events.publisher import RecordingPublisher
from chalicelib.store import ensure_indexes

POLICY = AuthPolicy(issuer="https://auth.test", audience="jucr-test", access_ttl_seconds=900,
                    refresh_ttl_seconds=86400, bcrypt_cost=4,
                    throttle=LoginThrottle(free_failures=3, delay_base_seconds=10, delay_cap_seconds=100,
                                           source_max_failures=10, source_window_seconds=600,
                                           pepper=DEV_LOGIN_PEPPER))
SEED = {"email": "driver@example.com", "name": "Dana Driver", "password": "correct horse battery",
        "vehicle": {"brand": "Volkswagen", "model": "ID.3", "batteryCapacity": 58.0}}
LOGIN = {"email": "driver@example.com", "password": "correct horse battery"}


class Commands(monitoring.CommandListener):
    """Names of the commands sent, one per round trip."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def take(self) -> list[str]:
        names, self.names = self.names, []
        return names


@pytest.fixture
def counted(db, settings):
    ensure_indexes(db, INDEXES)
    commands = Commands()
    client = MongoClient(settings.store.mongodb_uri, tz_aware=True, event_listeners=[commands])
    client.admin.command("ping")  # connection set-up is not part of a request
    now = dt.datetime(2026, 2, 21, 14, 0, tzinfo=dt.UTC)
    deps = AuthDeps(repo=AuthRepository(client[settings.store.mongodb_db]), publisher=RecordingPublisher(),
                    clock=lambda: now, keys=KeyRing.generate(), policy=POLICY)
    commands.take()
    yield deps, commands
    client.close()


def test_a_sign_in_is_five_round_trips_and_a_refresh_four(counted):
    deps, commands = counted
    service.register(deps, SEED)
    commands.take()
    out = service.login(deps, LOGIN)
    # count the attempt, the user, forget the attempts, a new family, its first token
    assert commands.take() == ["update", "find", "delete", "insert", "insert"]
    service.refresh(deps, {"token": out["refreshToken"]})
    # spend the token, renew its family, the user, the next token
    assert commands.take() == ["findAndModify", "findAndModify", "find", "insert"]


def test_a_sign_in_with_a_source_is_nine_the_first_time_then_eight(counted):
    deps, commands = counted
    service.register(deps, SEED)
    commands.take()
    service.login(deps, LOGIN, source="net-a")
    # is the pair trusted, the source and the pair counted, the user, the pair forgotten, the source's count
    # given back, the pair remembered as trusted, family, token
    assert commands.take() == ["find", "update", "update", "find", "delete", "update", "update", "insert", "insert"]
    service.login(deps, LOGIN, source="net-a")
    # trusted: the source is not counted, and the trust is fresh, so it is not written again
    assert commands.take() == ["find", "update", "find", "delete", "insert", "insert"]


def test_a_failure_is_two_or_three_and_a_delayed_attempt_three_without_bcrypt(counted):
    deps, commands = counted
    with pytest.raises(Unauthorized):
        service.login(deps, dict(LOGIN, password="wrong password!"))
    assert commands.take() == ["update", "find"]  # a new count, the (missing) user
    with pytest.raises(Unauthorized):
        service.login(deps, dict(LOGIN, password="wrong password!"))
    assert commands.take() == ["update", "findAndModify", "find"]  # a live count: add to it
    with pytest.raises(Unauthorized):
        service.login(deps, dict(LOGIN, password="wrong password!"))
    commands.take()
    with pytest.raises(TooManyAttempts):
        service.login(deps, LOGIN)
    assert commands.take() == ["update", "findAndModify", "find"]  # refused before the user is read
