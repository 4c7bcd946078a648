"""Auth unit-test fixtures: an in-memory twin of ``AuthRepository`` and a hand-set clock."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from chalicelib.auth.keys import KeyRing
from chalicelib.auth.repository import DuplicateEmail
from chalicelib.auth.service import AuthDeps, AuthPolicy
from chalicelib.events.publisher import RecordingPublisher

T0 = dt.datetime(2026, 2, 21, 14, 0, tzinfo=dt.UTC)


class InMemoryAuthRepository:
    """Same methods and guarantees as ``AuthRepository`` (unique email, guarded claim), in dicts."""

    def __init__(self) -> None:
        self.users: dict[str, dict] = {}
        self.attempts: dict[str, dict] = {}
        self.refresh: dict[str, dict] = {}
        self.families: dict[str, dict] = {}

    def insert_user(self, user: dict[str, Any]) -> None:
        if any(u["email"] == user["email"] for u in self.users.values()):
            raise DuplicateEmail()
        self.users[user["_id"]] = copy.deepcopy(user)

    def find_user(self, user_id):
        return copy.deepcopy(self.users.get(user_id))

    def find_user_by_email(self, email):
        return next((copy.deepcopy(u) for u in self.users.values() if u["email"] == email), None)

    def mark_registration_published(self, user_id):
        self.users[user_id]["registrationPublished"] = True

    def bump_token_version(self, user_id):
        if user_id not in self.users:
            return None
        self.users[user_id]["tokenVersion"] += 1
        return self.users[user_id]["tokenVersion"]

    def find_attempts(self, key):
        return copy.deepcopy(self.attempts.get(key))

    def record_failure(self, key, now, restart):
        doc = self.attempts.setdefault(key, {"_id": key, "failures": 0})
        doc["failures"] = 1 if restart else doc["failures"] + 1
        doc["lastFailureAt"] = now
        return doc["failures"]

    def lock(self, key, until):
        self.attempts[key].update(lockedUntil=until, failures=0)

    def clear_attempts(self, key):
        self.attempts.pop(key, None)

    def insert_refresh(self, token_hash, record):
        assert token_hash not in self.refresh
        self.refresh[token_hash] = {"_id": token_hash, **record, "usedAt": None}

    def claim_refresh(self, token_hash, now):
        doc = self.refresh.get(token_hash)
        if doc is None or doc["usedAt"] is not None:
            return None
        doc["usedAt"] = now
        return copy.deepcopy(doc)

    def find_refresh(self, token_hash):
        return copy.deepcopy(self.refresh.get(token_hash))

    def create_family(self, family_id, user_id, now):
        self.families[family_id] = {"_id": family_id, "userId": user_id, "createdAt": now, "revokedAt": None}

    def revoke_family(self, family_id, now):
        if self.families.get(family_id, {}).get("revokedAt") is None and family_id in self.families:
            self.families[family_id]["revokedAt"] = now

    def family_revoked(self, family_id):
        doc = self.families.get(family_id)
        return doc is None or doc["revokedAt"] is not None


class Clock:
    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


POLICY = AuthPolicy(issuer="https://auth.test", audience="jucr-test", access_ttl_seconds=900,
                    refresh_ttl_seconds=86400, bcrypt_cost=4, max_failures=3, lock_seconds=600)


@pytest.fixture(scope="session")
def keys() -> KeyRing:
    return KeyRing.generate()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def repo() -> InMemoryAuthRepository:
    return InMemoryAuthRepository()


@pytest.fixture
def publisher(clock) -> RecordingPublisher:
    return RecordingPublisher(clock=clock)


@pytest.fixture
def deps(repo, publisher, clock, keys) -> AuthDeps:
    return AuthDeps(repo=repo, publisher=publisher, clock=clock, keys=keys, policy=POLICY)


def seed_input(**overrides) -> dict[str, Any]:
    """The register payload of DESIGN.md: ``{email, name, password, vehicle: {brand, model, batteryCapacity}}``."""
    data = {
        "email": "driver@example.com",
        "name": "Dana Driver",
        "password": "correct horse battery",
        "vehicle": {"brand": "Volkswagen", "model": "ID.3", "batteryCapacity": 58.0},
    }
    data.update(overrides)
    return data


@pytest.fixture
def seed():
    """A factory for the seed register payload, with overrides."""
    return seed_input
