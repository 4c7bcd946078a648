"""Auth data access: users, sign-in attempts, refresh tokens and their families.

Every state change that must happen once is a single-document update whose
filter is the guard (MongoDB applies it atomically, so of racing writers only
those the filter still admits change anything): counting a sign-in attempt,
spending a refresh token, renewing or revoking a family. "One account per email"
is the unique ``email`` index, so concurrent registrations need no read first.

Expiry is in the data, not in the TTL monitor: every filter compares
``expiresAt`` with the caller's clock, and the TTL indexes below only remove
what those filters already refuse: MongoDB's monitor runs about once a
minute, and the embedded mongo-java-server keeps TTL indexes but expires nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from chalicelib.auth.throttle import Gate
from chalicelib.store import IndexSpec, translate_errors

USERS = "users"
LOGIN_ATTEMPTS = "auth_login_attempts"  # _id = throttle key: {failures, expiresAt[, lastFailureAt]}
REFRESH_TOKENS = "auth_refresh_tokens"  # _id = SHA-256 of the token; usedAt set once, when it is spent
REFRESH_FAMILIES = "auth_refresh_families"  # _id = family id: every token descended from one sign-in

# A sign-in count may be removed by the TTL monitor only well after it ended, so a store clock
# running ahead of the Lambdas' never ends a delay early. Tokens and families go at their expiry: once
# gone they are refused, which is what their expiresAt says anyway.
LOGIN_ATTEMPTS_TTL_SECONDS = 3600

INDEXES: list[IndexSpec] = [
    IndexSpec(collection=USERS, keys=(("email", 1),), unique=True, name="users_email_unique"),
    IndexSpec(collection=LOGIN_ATTEMPTS, keys=(("expiresAt", 1),), name="login_attempts_ttl",
              options={"expireAfterSeconds": LOGIN_ATTEMPTS_TTL_SECONDS}),
    IndexSpec(collection=REFRESH_TOKENS, keys=(("expiresAt", 1),), name="refresh_tokens_ttl",
              options={"expireAfterSeconds": 0}),
    # A family's expiresAt follows its newest token, so it outlives every token that can be spent.
    IndexSpec(collection=REFRESH_FAMILIES, keys=(("expiresAt", 1),), name="refresh_families_ttl",
              options={"expireAfterSeconds": 0}),
]


class DuplicateEmail(Exception):
    """A user with this email already exists (the unique index said so)."""


class AuthRepository:
    """The store port of the auth service; ``tests/unit/auth`` has an in-memory twin."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- users -----------------------------------------------------------------------

    def insert_user(self, user: dict[str, Any]) -> None:
        """Store a new user; the unique email index turns a concurrent twin into ``DuplicateEmail``."""
        try:
            with translate_errors("insert user"):
                self.db[USERS].insert_one(user)
        except DuplicateKeyError:
            raise DuplicateEmail() from None

    def find_user(self, user_id: str) -> dict[str, Any] | None:
        with translate_errors("find user"):
            return self.db[USERS].find_one({"_id": user_id})

    def find_user_by_email(self, email: str) -> dict[str, Any] | None:
        with translate_errors("find user by email"):
            return self.db[USERS].find_one({"email": email})

    def mark_registration_published(self, user_id: str) -> None:
        with translate_errors("mark registration published"):
            self.db[USERS].update_one({"_id": user_id}, {"$set": {"registrationPublished": True}})

    def bump_token_version(self, user_id: str) -> int | None:
        """Increment ``tokenVersion`` in one update, so two revocations never read the same version."""
        with translate_errors("bump token version"):
            doc = self.db[USERS].find_one_and_update(
                {"_id": user_id}, {"$inc": {"tokenVersion": 1}}, return_document=ReturnDocument.AFTER
            )
        return None if doc is None else int(doc["tokenVersion"])

    # --- sign-in attempts ------------------------------------------------------------
    #
    # One document per throttle key (``chalicelib/auth/throttle.py``: an email and source pair,
    # or a source): ``failures`` counted so far and ``expiresAt``, when they stop counting; a
    # pair also keeps ``lastFailureAt``. Attempts are counted before bcrypt runs, by the two
    # guarded writes below.

    def start_attempts(self, key: str, now: dt.datetime, fields: Mapping[str, Any]) -> bool:
        """Count the first failure of a new document: ``False`` when a live one already exists.

        The filter admits only a missing document or one whose ``expiresAt`` has passed (or
        has none, as written by an earlier layout), so the upsert replaces it with
        ``failures: 1``. A live document makes the upsert collide with its ``_id``: the
        unique ``_id`` index refuses it, and the caller counts into that document instead.
        """
        try:
            with translate_errors("start sign-in attempts"):
                self.db[LOGIN_ATTEMPTS].replace_one(
                    {"_id": key, "expiresAt": {"$not": {"$gt": now}}}, {"failures": 1, **fields}, upsert=True,
                )
        except DuplicateKeyError:
            return False
        return True

    def add_failure(self, key: str, now: dt.datetime, gates: Sequence[Gate],
                    stretch: Mapping[str, dt.datetime]) -> int | None:
        """Count one more failure if a gate admits it; the new count, or ``None`` when none does.

        The gates are the filter, so each increment is judged on the document as it is
        then: no number of parallel guesses gets past a gate together. ``stretch`` fields
        only ever move later (``$max``). ``None`` also when the document ended or was
        cleared since the caller looked.
        """
        update: dict[str, Any] = {"$inc": {"failures": 1}}
        if stretch:
            update["$max"] = dict(stretch)
        with translate_errors("count sign-in attempt"):
            doc = self.db[LOGIN_ATTEMPTS].find_one_and_update(
                {"_id": key, "expiresAt": {"$gt": now}, "$or": [_gate_filter(g) for g in gates]}, update,
                projection={"failures": 1}, return_document=ReturnDocument.AFTER,
            )
        return None if doc is None else int(doc["failures"])

    def release_failure(self, key: str, now: dt.datetime) -> None:
        """Give back one counted failure (the attempt succeeded), if its document is still live."""
        with translate_errors("release sign-in attempt"):
            self.db[LOGIN_ATTEMPTS].update_one(
                {"_id": key, "expiresAt": {"$gt": now}, "failures": {"$gt": 0}}, {"$inc": {"failures": -1}}
            )

    def find_attempts(self, key: str) -> dict[str, Any] | None:
        with translate_errors("find sign-in attempts"):
            return self.db[LOGIN_ATTEMPTS].find_one({"_id": key})

    def clear_attempts(self, key: str) -> None:
        """Forget the failures of a pair (after a successful sign-in)."""
        with translate_errors("clear sign-in attempts"):
            self.db[LOGIN_ATTEMPTS].delete_one({"_id": key})

    def remember(self, key: str, until: dt.datetime) -> None:
        """Keep a marker ``key`` alive until ``until`` (a pair that signed in); written again, it lasts longer."""
        with translate_errors("remember sign-in"):
            self.db[LOGIN_ATTEMPTS].replace_one({"_id": key}, {"remembered": True, "expiresAt": until}, upsert=True)

    # --- refresh tokens ---------------------------------------------------------------

    def insert_refresh(self, token_hash: str, record: dict[str, Any]) -> None:
        with translate_errors("insert refresh token"):
            self.db[REFRESH_TOKENS].insert_one({"_id": token_hash, **record, "usedAt": None})

    def spend_refresh(self, token_hash: str, now: dt.datetime) -> dict[str, Any] | None:
        """Spend a live token: its record, or ``None`` when it is unknown, spent or expired.

        The filter is the guard: of any number of racing callers only the first finds
        ``usedAt`` unset, so exactly one gets the record back. Expiry is checked here,
        not left to the TTL monitor, so an expired token is refused even while stored.
        """
        with translate_errors("spend refresh token"):
            return self.db[REFRESH_TOKENS].find_one_and_update(
                {"_id": token_hash, "usedAt": None, "expiresAt": {"$gt": now}},
                {"$set": {"usedAt": now}}, return_document=ReturnDocument.AFTER,
            )

    def find_refresh(self, token_hash: str) -> dict[str, Any] | None:
        with translate_errors("find refresh token"):
            return self.db[REFRESH_TOKENS].find_one({"_id": token_hash})

    def create_family(self, family_id: str, user_id: str, now: dt.datetime, expires_at: dt.datetime) -> None:
        with translate_errors("create refresh family"):
            self.db[REFRESH_FAMILIES].insert_one(
                {"_id": family_id, "userId": user_id, "createdAt": now, "revokedAt": None, "expiresAt": expires_at}
            )

    def renew_family(self, family_id: str, expires_at: dt.datetime) -> bool:
        """Keep a family alive as long as its newest token; ``False`` when it is revoked or gone.

        One guarded update answers "may this family still rotate?" and moves its expiry
        on; a revocation that lands first makes the filter miss, so rotation stops.
        """
        with translate_errors("renew refresh family"):
            doc = self.db[REFRESH_FAMILIES].find_one_and_update(
                {"_id": family_id, "revokedAt": None}, {"$max": {"expiresAt": expires_at}},
                projection={"_id": 1},
            )
        return doc is not None

    def revoke_family(self, family_id: str, now: dt.datetime) -> None:
        with translate_errors("revoke refresh family"):
            self.db[REFRESH_FAMILIES].update_one(
                {"_id": family_id, "revokedAt": None}, {"$set": {"revokedAt": now}}
            )


def _gate_filter(gate: Gate) -> dict[str, Any]:
    """A gate as a filter: the failures range, and the last failure no later than ``last_by``."""
    failures: dict[str, int] = {"$gte": gate.low}
    if gate.high is not None:
        failures["$lte"] = gate.high
    out: dict[str, Any] = {"failures": failures}
    if gate.last_by is not None:
        out["lastFailureAt"] = {"$lte": gate.last_by}
    return out
