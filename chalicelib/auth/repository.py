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
from typing import Any

from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from chalicelib.store import IndexSpec, translate_errors

USERS = "users"
LOGIN_ATTEMPTS = "auth_login_attempts"  # _id = email key: {failures, expiresAt}
REFRESH_TOKENS = "auth_refresh_tokens"  # _id = SHA-256 of the token; usedAt set once, when it is spent
REFRESH_FAMILIES = "auth_refresh_families"  # _id = family id: every token descended from one sign-in

# A lock may be removed by the TTL monitor only well after it ended, so a store clock running
# ahead of the Lambdas' never ends a lock early. Tokens and families go at their expiry: once
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
    # One document per email key: ``failures`` counted so far and ``expiresAt``, when they stop
    # counting (the newest counted attempt plus the lock time; with failures at the limit, the
    # end of the lock). Attempts are counted before bcrypt runs, by the two guarded writes below.

    def start_attempts(self, key: str, expires_at: dt.datetime, now: dt.datetime) -> bool:
        """Count the first attempt of a new window: ``False`` when a live count already exists.

        The filter admits only a missing document or one whose window has ended (or one
        without ``expiresAt``, as written before this layout), so the upsert replaces it
        with ``failures: 1``. A live document makes the upsert collide with its ``_id``:
        the unique ``_id`` index refuses it, and the caller counts into that window instead.
        """
        try:
            with translate_errors("start sign-in attempts"):
                self.db[LOGIN_ATTEMPTS].replace_one(
                    {"_id": key, "expiresAt": {"$not": {"$gt": now}}},
                    {"failures": 1, "expiresAt": expires_at}, upsert=True,
                )
        except DuplicateKeyError:
            return False
        return True

    def add_attempt(self, key: str, expires_at: dt.datetime, now: dt.datetime, limit: int) -> int | None:
        """Count one more attempt in the live window; the new count, or ``None`` if it is at ``limit``.

        ``failures < limit`` in the filter is what stops parallel guesses: each increment is
        applied to the document as it is then, so no more than ``limit`` are ever admitted.
        ``None`` also when the window ended or was cleared since the caller looked.
        """
        with translate_errors("count sign-in attempt"):
            doc = self.db[LOGIN_ATTEMPTS].find_one_and_update(
                {"_id": key, "expiresAt": {"$gt": now}, "failures": {"$lt": limit}},
                {"$inc": {"failures": 1}, "$max": {"expiresAt": expires_at}},
                projection={"failures": 1}, return_document=ReturnDocument.AFTER,
            )
        return None if doc is None else int(doc["failures"])

    def find_attempts(self, key: str) -> dict[str, Any] | None:
        with translate_errors("find sign-in attempts"):
            return self.db[LOGIN_ATTEMPTS].find_one({"_id": key})

    def clear_attempts(self, key: str) -> None:
        """Forget the failures of an email (after a successful sign-in)."""
        with translate_errors("clear sign-in attempts"):
            self.db[LOGIN_ATTEMPTS].delete_one({"_id": key})

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
