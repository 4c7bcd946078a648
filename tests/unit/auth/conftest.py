"""Auth unit-test fixtures: an in-memory twin of ``AuthRepository`` and a hand-set clock."""

from __future__ import annotations

import copy
import datetime as dt
import threading
from typing import Any

import pytest

from chalicelib.auth.keys import KeyRing
from chalicelib.auth.repository import DuplicateEmail
from chalicelib.auth.service import AuthDeps, AuthPolicy
from chalicelib.events.publisher import RecordingPublisher

T0 = dt.datetime(2026, 2, 21, 14, 0, tzinfo=dt.UTC)


class InMemoryAuthRepository:
    """Same methods and guarantees as ``AuthRepository`` (unique email, one claim, unique slots), in dicts."""

    def __init__(self) -> None:
        self.users: dict[str, dict] = {}
        self.attempts: dict[str, dict] = {}  # email key -> {"generation": g}
        self.slots: dict[str, dict] = {}  # "{key}:{g}:{n}" / "{key}:{g}:end" -> {"at": time}
        self.lock = threading.Lock()
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

    def login_generation(self, key):
        return self.attempts.get(key, {}).get("generation", 0)

    def generation_closed(self, key, generation):
        return f"{key}:{generation}:end" in self.slots

    def take_login_slot(self, key, generation, slot, now):
        with self.lock:  # the unique _id insert of the real store
            if f"{key}:{generation}:{slot}" in self.slots:
                return False
            self.slots[f"{key}:{generation}:{slot}"] = {"at": now}
            return True

    def login_slot_time(self, key, generation, slot):
        return self.slots.get(f"{key}:{generation}:{slot}", {}).get("at")

    def release_login_slot(self, key, generation, slot):
        self.slots.pop(f"{key}:{generation}:{slot}", None)

    def close_login_generation(self, key, generation, slots, now):
        with self.lock:
            self.slots.setdefault(f"{key}:{generation}:end", {"at": now})
            doc = self.attempts.setdefault(key, {"_id": key, "generation": 0})
            doc["generation"] = max(doc["generation"], generation + 1)
            for n in range(1, slots + 1):
                self.slots.pop(f"{key}:{generation}:{n}", None)
            self.slots.pop(f"{key}:{generation - 1}:end", None)

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
