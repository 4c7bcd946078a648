"""Auth against the embedded store (and real MongoDB when configured): the guarantees that need a database."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from chalicelib.auth import service
from chalicelib.auth.keys import KeyRing
from chalicelib.auth.repository import INDEXES, REFRESH_TOKENS, USERS, AuthRepository
from chalicelib.auth.service import AuthDeps, AuthPolicy
from chalicelib.auth.tokens import hash_refresh_token
from chalicelib.contracts.errors import AccountLocked, Conflict, Unauthorized
from chalicelib.contracts.events import USER_REGISTERED
from chalicelib.events.publisher import RecordingPublisher
from chalicelib.store import ensure_indexes

POLICY = AuthPolicy(issuer="https://auth.test", audience="jucr-test", access_ttl_seconds=900,
                    refresh_ttl_seconds=86400, bcrypt_cost=4, max_failures=3, lock_seconds=600)
SEED = {"email": "driver@example.com", "name": "Dana Driver", "password": "correct horse battery",
        "vehicle": {"brand": "Volkswagen", "model": "ID.3", "batteryCapacity": 58.0}}
LOGIN = {"email": "driver@example.com", "password": "correct horse battery"}


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 2, 21, 14, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def deps(db) -> AuthDeps:
    ensure_indexes(db, INDEXES)
    clock = Clock()
    return AuthDeps(repo=AuthRepository(db), publisher=RecordingPublisher(clock=clock), clock=clock,
                    keys=KeyRing.generate(), policy=POLICY)


@pytest.mark.mongodb
def test_register_login_me_round_trip(deps, db):
    out = service.register(deps, SEED)
    stored = db[USERS].find_one({"_id": out["user"]["id"]})
    assert stored["email"] == "driver@example.com" and stored["passwordHash"].startswith("bcrypt-sha256$")
    assert stored["registrationPublished"] is True
    assert len(deps.publisher.of_type(USER_REGISTERED)) == 1
    again = service.login(deps, {"email": "Driver@Example.com ", "password": "correct horse battery"})
    assert again["user"] == out["user"] == service.me(deps, out["user"]["id"], "0")


@pytest.mark.mongodb
def test_concurrent_registrations_with_one_email_exactly_one_succeeds(deps, db):
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            service.register(deps, dict(SEED, email=("DRIVER@example.com" if i % 2 else "driver@example.com"),
                                        name=f"Driver {i}"))
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict"] * 5 + ["ok"]
    assert db[USERS].count_documents({}) == 1
    assert len(deps.publisher.of_type(USER_REGISTERED)) == 1


@pytest.mark.mongodb
def test_lockout_is_persisted_and_expires(deps):
    service.register(deps, SEED)
    bad = dict(LOGIN, password="wrong password!")
    for _ in range(2):
        with pytest.raises(Unauthorized):
            service.login(deps, bad)
    with pytest.raises(AccountLocked):
        service.login(deps, bad)
    with pytest.raises(AccountLocked):
        service.login(deps, LOGIN)
    deps.clock.now += dt.timedelta(seconds=601)
    assert service.login(deps, LOGIN)["accessToken"]


@pytest.mark.mongodb
def test_refresh_rotation_reuse_and_hashed_storage(deps, db):
    first = service.register(deps, SEED)
    second = service.refresh(deps, {"token": first["refreshToken"]})
    assert db[REFRESH_TOKENS].find_one({"_id": first["refreshToken"]}) is None
    assert db[REFRESH_TOKENS].find_one({"_id": hash_refresh_token(first["refreshToken"])})["usedAt"] is not None
    with pytest.raises(Unauthorized):
        service.refresh(deps, {"token": first["refreshToken"]})
    with pytest.raises(Unauthorized):
        service.refresh(deps, {"token": second["refreshToken"]})


@pytest.mark.mongodb
def test_a_refresh_token_is_spent_once_even_under_a_race(deps):
    token = service.register(deps, SEED)["refreshToken"]
    claims: list[object] = []
    barrier = threading.Barrier(4)

    def claim() -> None:
        barrier.wait()
        claims.append(deps.repo.claim_refresh(hash_refresh_token(token), deps.clock()))

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(c is not None for c in claims) == 1


@pytest.mark.mongodb
def test_revoke_user_refuses_existing_refresh_tokens(deps):
    out = service.register(deps, SEED)
    assert service.revoke_user(deps, out["user"]["id"]) == 1
    with pytest.raises(Unauthorized):
        service.refresh(deps, {"token": out["refreshToken"]})
    with pytest.raises(Unauthorized):
        service.me(deps, out["user"]["id"], "0")
