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
from chalicelib.auth.throttle import DEV_LOGIN_PEPPER, LoginThrottle
from chalicelib.events.publisher import RecordingPublisher

T0 = dt.datetime(2026, 2, 21, 14, 0, tzinfo=dt.UTC)


class InMemoryAuthRepository:
    """Same methods and guarantees as ``AuthRepository``, in dicts.

    Each guarded update runs under one lock, as MongoDB applies a single-document
    update atomically: the unique email, one spend per token, the throttle gates.
    """

    def __init__(self) -> None:
        self.users: dict[str, dict] = {}
        self.attempts: dict[str, dict] = {}  # throttle key -> {"failures": n, "expiresAt": time, ...}
        self.lock = threading.Lock()
        self.refresh: dict[str, dict] = {}
        self.families: dict[str, dict] = {}

    def insert_user(self, user: dict[str, Any]) -> None:
        with self.lock:
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
        with self.lock:
            if user_id not in self.users:
                return None
            self.users[user_id]["tokenVersion"] += 1
            return self.users[user_id]["tokenVersion"]

    def start_attempts(self, key, now, fields):
        with self.lock:
            doc = self.attempts.get(key)
            if doc is not None and doc.get("expiresAt") is not None and doc["expiresAt"] > now:
                return False  # the upsert's _id collision
            self.attempts[key] = {"_id": key, "failures": 1, **fields}
            return True

    def add_failure(self, key, now, gates, stretch):
        with self.lock:
            doc = self.attempts.get(key)
            if doc is None or doc.get("expiresAt") is None or doc["expiresAt"] <= now:
                return None
            if not any(_admits(gate, doc) for gate in gates):
                return None
            doc["failures"] += 1
            for name, value in stretch.items():
                doc[name] = max(doc.get(name, value), value)
            return doc["failures"]

    def release_failure(self, key, now):
        with self.lock:
            doc = self.attempts.get(key)
            if doc is not None and doc["expiresAt"] > now and doc["failures"] > 0:
                doc["failures"] -= 1

    def find_attempts(self, key):
        return copy.deepcopy(self.attempts.get(key))

    def clear_attempts(self, key):
        self.attempts.pop(key, None)

    def remember(self, key, until):
        with self.lock:
            self.attempts[key] = {"_id": key, "remembered": True, "expiresAt": until}

    def insert_refresh(self, token_hash, record):
        assert token_hash not in self.refresh
        self.refresh[token_hash] = {"_id": token_hash, **record, "usedAt": None}

    def spend_refresh(self, token_hash, now):
        with self.lock:
            doc = self.refresh.get(token_hash)
            if doc is None or doc["usedAt"] is not None or doc["expiresAt"] <= now:
                return None
            doc["usedAt"] = now
            return copy.deepcopy(doc)

    def find_refresh(self, token_hash):
        return copy.deepcopy(self.refresh.get(token_hash))

    def create_family(self, family_id, user_id, now, expires_at):
        self.families[family_id] = {"_id": family_id, "userId": user_id, "createdAt": now, "revokedAt": None,
                                    "expiresAt": expires_at}

    def renew_family(self, family_id, expires_at):
        with self.lock:
            doc = self.families.get(family_id)
            if doc is None or doc["revokedAt"] is not None:
                return False
            doc["expiresAt"] = max(doc["expiresAt"], expires_at)
            return True

    def revoke_family(self, family_id, now):
        with self.lock:
            if family_id in self.families and self.families[family_id]["revokedAt"] is None:
                self.families[family_id]["revokedAt"] = now


def _admits(gate, doc) -> bool:
    """The repository's gate filter, evaluated on a dict."""
    failures = doc["failures"]
    if failures < gate.low or (gate.high is not None and failures > gate.high):
        return False
    return gate.last_by is None or ("lastFailureAt" in doc and doc["lastFailureAt"] <= gate.last_by)


class Clock:
    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


# 3 free failures, then 10, 20, 40 ... s up to 100 s; 10 failures per source per 600 s.
THROTTLE = LoginThrottle(free_failures=3, delay_base_seconds=10, delay_cap_seconds=100, source_max_failures=10,
                         source_window_seconds=600, pepper=DEV_LOGIN_PEPPER)
POLICY = AuthPolicy(issuer="https://auth.test", audience="jucr-test", access_ttl_seconds=900,
                    refresh_ttl_seconds=86400, bcrypt_cost=4, throttle=THROTTLE)


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
