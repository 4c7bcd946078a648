"""Auth against the embedded store (and real MongoDB when configured): the guarantees that need a database."""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import replace
from functools import partial

import pytest

from chalicelib.auth import service, throttle
from chalicelib.auth.keys import KeyRing
from chalicelib.auth.repository import (
    INDEXES,
    LOGIN_ATTEMPTS,
    LOGIN_ATTEMPTS_TTL_SECONDS,
    REFRESH_FAMILIES,
    REFRESH_TOKENS,
    USERS,
    AuthRepository,
)
from chalicelib.auth.service import AuthDeps, AuthPolicy
from chalicelib.auth.throttle import DEV_LOGIN_PEPPER, FAILURE_MEMORY_SECONDS, LoginThrottle
from chalicelib.auth.tokens import hash_refresh_token
from chalicelib.contracts.errors import Conflict, TooManyAttempts, Unauthorized
from chalicelib.contracts.events import USER_REGISTERED
from chalicelib.events.publisher import RecordingPublisher
from chalicelib.store import ensure_indexes
from tests.concurrency import run_concurrently

THROTTLE = LoginThrottle(free_failures=3, delay_base_seconds=10, delay_cap_seconds=100, source_max_failures=10,
                         source_window_seconds=600, pepper=DEV_LOGIN_PEPPER)
POLICY = AuthPolicy(issuer="https://auth.test", audience="jucr-test", access_ttl_seconds=900,
                    refresh_ttl_seconds=86400, bcrypt_cost=4, throttle=THROTTLE)
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

    run_concurrently(*(partial(attempt, i) for i in range(6)))
    assert sorted(outcomes) == ["conflict"] * 5 + ["ok"]
    assert db[USERS].count_documents({}) == 1
    assert len(deps.publisher.of_type(USER_REGISTERED)) == 1


BAD = dict(LOGIN, password="wrong password!")


def _fail(deps, times: int, **kw) -> None:
    for _ in range(times):
        with pytest.raises(Unauthorized):
            service.login(deps, BAD, **kw)


@pytest.mark.mongodb
def test_the_delay_is_persisted_and_the_right_password_signs_in_once_it_has_passed(deps):
    service.register(deps, SEED)
    _fail(deps, 3)
    with pytest.raises(TooManyAttempts) as delayed:
        service.login(deps, LOGIN)
    assert delayed.value.details == {"retryAfterSeconds": 10}
    deps.clock.now += dt.timedelta(seconds=10)
    assert service.login(deps, LOGIN)["accessToken"]


@pytest.mark.mongodb
def test_failures_are_one_document_per_pair_and_source_and_a_success_gives_them_back(deps, db):
    service.register(deps, SEED)
    _fail(deps, 2, source="net-a")
    pair = throttle.pair_key(DEV_LOGIN_PEPPER, "driver@example.com", "net-a")
    source = throttle.source_key(DEV_LOGIN_PEPPER, "net-a")
    now = deps.clock.now
    assert db[LOGIN_ATTEMPTS].find_one({"_id": pair}) == {
        "_id": pair, "failures": 2, "lastFailureAt": now, "expiresAt": now + dt.timedelta(seconds=86400)}
    assert db[LOGIN_ATTEMPTS].find_one({"_id": source}) == {
        "_id": source, "failures": 2, "expiresAt": now + dt.timedelta(seconds=600)}
    assert "driver" not in json.dumps(list(db[LOGIN_ATTEMPTS].find({})), default=str)  # keyed by hashes
    service.login(deps, LOGIN, source="net-a")
    assert db[LOGIN_ATTEMPTS].find_one({"_id": pair}) is None
    assert db[LOGIN_ATTEMPTS].find_one({"_id": source})["failures"] == 2  # the success is not a failure
    _fail(deps, 3, source="net-a")  # counting starts again: three free failures


@pytest.mark.mongodb
def test_the_delay_is_read_from_the_document_not_from_the_ttl_monitor(deps, db, monkeypatch):
    """A live delay refuses before bcrypt; a forgotten document still stored (monitor not run) counts for nothing."""
    service.register(deps, SEED)
    key, now = throttle.pair_key(DEV_LOGIN_PEPPER, "driver@example.com", None), deps.clock.now
    checks: list[str] = []
    real_verify = service.verify_password
    monkeypatch.setattr(service, "verify_password", lambda pw, stored: checks.append(stored) or real_verify(pw, stored))
    db[LOGIN_ATTEMPTS].insert_one({"_id": key, "failures": 4, "lastFailureAt": now - dt.timedelta(seconds=5),
                                   "expiresAt": now + dt.timedelta(seconds=90)})
    with pytest.raises(TooManyAttempts) as delayed:
        service.login(deps, LOGIN)
    assert delayed.value.details == {"retryAfterSeconds": 15} and checks == []  # 20 s after the 4th failure
    assert db[LOGIN_ATTEMPTS].find_one({"_id": key})["failures"] == 4  # a refused attempt changes nothing
    db[LOGIN_ATTEMPTS].update_one({"_id": key}, {"$set": {"expiresAt": now - dt.timedelta(seconds=1)}})
    _fail(deps, 1)
    assert db[LOGIN_ATTEMPTS].find_one({"_id": key})["failures"] == 1  # forgotten: a new count


@pytest.mark.mongodb
def test_a_count_outlives_the_cap(deps, db):
    _fail(deps, 3)
    deps.clock.now += dt.timedelta(seconds=FAILURE_MEMORY_SECONDS - 1)  # long past the 100 s cap
    with pytest.raises(Unauthorized):
        service.login(deps, BAD)  # admitted after the cap, but counted as the 4th failure, not a first
    key = throttle.pair_key(DEV_LOGIN_PEPPER, "driver@example.com", None)
    assert db[LOGIN_ATTEMPTS].find_one({"_id": key})["failures"] == 4


@pytest.mark.mongodb
def test_ttl_indexes_expire_attempts_tokens_and_families(deps, db):
    def ttl(collection: str) -> dict[str, object]:
        return {name: (info["key"], info.get("expireAfterSeconds"))
                for name, info in db[collection].index_information().items() if "expireAfterSeconds" in info}

    assert ttl(LOGIN_ATTEMPTS) == {"login_attempts_ttl": ([("expiresAt", 1)], LOGIN_ATTEMPTS_TTL_SECONDS)}
    assert LOGIN_ATTEMPTS_TTL_SECONDS >= 60  # never before a count has ended, even with some clock skew
    assert ttl(REFRESH_TOKENS) == {"refresh_tokens_ttl": ([("expiresAt", 1)], 0)}
    assert ttl(REFRESH_FAMILIES) == {"refresh_families_ttl": ([("expiresAt", 1)], 0)}
    assert ensure_indexes(db, INDEXES) == ensure_indexes(db, INDEXES)  # idempotent


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
def test_a_refresh_token_is_spent_once_even_under_a_race(deps, db):
    token = service.register(deps, SEED)["refreshToken"]
    spends: list[object] = []
    barrier = threading.Barrier(8)

    def spend() -> None:
        barrier.wait()
        spends.append(deps.repo.spend_refresh(hash_refresh_token(token), deps.clock()))

    run_concurrently(*[spend] * 8)
    assert len(spends) == 8 and sum(s is not None for s in spends) == 1
    assert db[REFRESH_TOKENS].find_one({"_id": hash_refresh_token(token)})["usedAt"] == deps.clock()


@pytest.mark.mongodb
def test_an_expired_token_still_stored_is_refused_unspent_and_revokes_nothing(deps, db):
    out = service.register(deps, SEED)
    token_hash = hash_refresh_token(out["refreshToken"])
    deps.clock.now += dt.timedelta(seconds=86400)  # exactly at expiresAt: no longer alive
    with pytest.raises(Unauthorized):
        service.refresh(deps, {"token": out["refreshToken"]})
    stored = db[REFRESH_TOKENS].find_one({"_id": token_hash})
    assert stored is not None and stored["usedAt"] is None
    assert db[REFRESH_FAMILIES].find_one({"_id": stored["familyId"]})["revokedAt"] is None


@pytest.mark.mongodb
def test_a_family_lives_as_long_as_its_newest_token(deps, db):
    first = service.register(deps, SEED)
    [family] = db[REFRESH_FAMILIES].find({})
    assert family["expiresAt"] == deps.clock.now + dt.timedelta(seconds=86400)
    deps.clock.now += dt.timedelta(hours=5)
    second = service.refresh(deps, {"token": first["refreshToken"]})
    newest = db[REFRESH_TOKENS].find_one({"_id": hash_refresh_token(second["refreshToken"])})
    assert db[REFRESH_FAMILIES].find_one({"_id": family["_id"]})["expiresAt"] == newest["expiresAt"]


@pytest.mark.mongodb
def test_a_revoked_family_stops_rotation_even_for_an_unspent_token(deps, db):
    out = service.register(deps, SEED)
    family_id = db[REFRESH_FAMILIES].find_one({})["_id"]
    deps.repo.revoke_family(family_id, deps.clock())
    with pytest.raises(Unauthorized):
        service.refresh(deps, {"token": out["refreshToken"]})
    assert db[REFRESH_TOKENS].count_documents({}) == 1  # nothing issued


@pytest.mark.mongodb
def test_racing_refreshes_with_one_token_give_at_most_one_new_token(deps):
    token = service.register(deps, SEED)["refreshToken"]
    issued: list[str] = []
    refused: list[str] = []
    barrier = threading.Barrier(6)

    def use() -> None:
        barrier.wait()
        try:
            issued.append(service.refresh(deps, {"token": token})["refreshToken"])
        except Unauthorized:
            refused.append("refused")

    run_concurrently(*[use] * 6)
    assert len(issued) <= 1 and len(issued) + len(refused) == 6
    for new_token in issued:  # a concurrent replay is a replay: the family is revoked
        with pytest.raises(Unauthorized):
            service.refresh(deps, {"token": new_token})


@pytest.mark.mongodb
def test_parallel_wrong_guesses_cannot_exceed_the_free_failures(deps, monkeypatch):
    """Counted before bcrypt: 8 racing guesses with 5 free failures get 5 password checks, the rest wait."""
    deps = replace(deps, policy=replace(deps.policy, throttle=replace(THROTTLE, free_failures=5)))
    service.register(deps, SEED)
    checks: list[str] = []
    real_verify = service.verify_password
    monkeypatch.setattr(service, "verify_password", lambda pw, stored: checks.append(stored) or real_verify(pw, stored))
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def guess() -> None:
        barrier.wait()
        try:
            service.login(deps, BAD)
            outcomes.append("ok")
        except (Unauthorized, TooManyAttempts) as exc:
            outcomes.append(type(exc).__name__)

    run_concurrently(*[guess] * 8)
    assert len(checks) == 5
    assert sorted(outcomes) == ["TooManyAttempts"] * 3 + ["Unauthorized"] * 5
    with pytest.raises(TooManyAttempts):
        service.login(deps, LOGIN)
    assert len(checks) == 5  # refused before bcrypt during the delay
    deps.clock.now += dt.timedelta(seconds=10)
    assert service.login(deps, LOGIN)["accessToken"]


@pytest.mark.mongodb
def test_revoke_user_refuses_existing_refresh_tokens(deps):
    out = service.register(deps, SEED)
    assert service.revoke_user(deps, out["user"]["id"]) == 1
    with pytest.raises(Unauthorized):
        service.refresh(deps, {"token": out["refreshToken"]})
    with pytest.raises(Unauthorized):
        service.me(deps, out["user"]["id"], "0")
