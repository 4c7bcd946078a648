"""Auth data access: users, sign-in attempts, refresh tokens and their families.

Every hot write is keyed by ``_id`` (FerretDB scans for any other filter):
users by their id, sign-in attempts by the SHA-256 of the normalised email,
refresh tokens by the SHA-256 of the token, families by their id. The one
non-``_id`` lookup is a user by email at sign-in, a single ``find_one`` backed by
the unique ``email`` index, which is also what makes "one account per email"
hold under concurrent registrations (no read-then-write).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from chalicelib.store import IndexSpec, translate_errors

USERS = "users"
LOGIN_ATTEMPTS = "auth_login_attempts"
REFRESH_TOKENS = "auth_refresh_tokens"
REFRESH_FAMILIES = "auth_refresh_families"

INDEXES: list[IndexSpec] = [
    IndexSpec(collection=USERS, keys=(("email", 1),), unique=True, name="users_email_unique"),
]


class DuplicateEmail(Exception):
    """A user with this email already exists (the unique index said so)."""


class AuthRepository:
    """The store port of the auth service; ``tests/unit/auth`` has an in-memory twin."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- users -----------------------------------------------------------------------

    def insert_user(self, user: dict[str, Any]) -> None:
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
        with translate_errors("bump token version"):
            doc = self.db[USERS].find_one_and_update(
                {"_id": user_id}, {"$inc": {"tokenVersion": 1}}, return_document=ReturnDocument.AFTER
            )
        return None if doc is None else int(doc["tokenVersion"])

    # --- sign-in attempts ------------------------------------------------------------

    def find_attempts(self, key: str) -> dict[str, Any] | None:
        with translate_errors("find sign-in attempts"):
            return self.db[LOGIN_ATTEMPTS].find_one({"_id": key})

    def record_failure(self, key: str, now: dt.datetime, restart: bool) -> int:
        """Count a failed sign-in atomically; ``restart`` begins a new window at 1. Returns the count."""
        update: dict[str, Any] = {"$set": {"lastFailureAt": now}}
        if restart:
            update["$set"]["failures"] = 1
        else:
            update["$inc"] = {"failures": 1}
        with translate_errors("record sign-in failure"):
            doc = self.db[LOGIN_ATTEMPTS].find_one_and_update(
                {"_id": key}, update, upsert=True, return_document=ReturnDocument.AFTER
            )
        return int(doc["failures"])

    def lock(self, key: str, until: dt.datetime) -> None:
        with translate_errors("lock sign-in"):
            self.db[LOGIN_ATTEMPTS].update_one({"_id": key}, {"$set": {"lockedUntil": until, "failures": 0}})

    def clear_attempts(self, key: str) -> None:
        with translate_errors("clear sign-in attempts"):
            self.db[LOGIN_ATTEMPTS].delete_one({"_id": key})

    # --- refresh tokens ---------------------------------------------------------------

    def insert_refresh(self, token_hash: str, record: dict[str, Any]) -> None:
        with translate_errors("insert refresh token"):
            self.db[REFRESH_TOKENS].insert_one({"_id": token_hash, **record, "usedAt": None})

    def claim_refresh(self, token_hash: str, now: dt.datetime) -> dict[str, Any] | None:
        """Mark the token used if nobody has; ``None`` when it is unknown or already used."""
        with translate_errors("claim refresh token"):
            return self.db[REFRESH_TOKENS].find_one_and_update(
                {"_id": token_hash, "usedAt": None}, {"$set": {"usedAt": now}}, return_document=ReturnDocument.AFTER
            )

    def find_refresh(self, token_hash: str) -> dict[str, Any] | None:
        with translate_errors("find refresh token"):
            return self.db[REFRESH_TOKENS].find_one({"_id": token_hash})

    def create_family(self, family_id: str, user_id: str, now: dt.datetime) -> None:
        with translate_errors("create refresh family"):
            self.db[REFRESH_FAMILIES].insert_one(
                {"_id": family_id, "userId": user_id, "createdAt": now, "revokedAt": None}
            )

    def revoke_family(self, family_id: str, now: dt.datetime) -> None:
        with translate_errors("revoke refresh family"):
            self.db[REFRESH_FAMILIES].update_one(
                {"_id": family_id, "revokedAt": None}, {"$set": {"revokedAt": now}}
            )

    def family_revoked(self, family_id: str) -> bool:
        with translate_errors("find refresh family"):
            doc = self.db[REFRESH_FAMILIES].find_one({"_id": family_id})
        return doc is None or doc.get("revokedAt") is not None
