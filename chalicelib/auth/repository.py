"""Auth data access: users, sign-in attempts, refresh tokens and their families.

Every hot write is keyed by ``_id`` (FerretDB scans for any other filter):
users by their id, sign-in attempt slots by the SHA-256 of the normalised email
plus a generation and a slot number, refresh tokens (and their claims) by the
SHA-256 of the token, families by their id. The one non-``_id`` lookup is a user
by email at sign-in, a single ``find_one`` backed by the unique ``email`` index,
which is also what makes "one account per email" hold under concurrent
registrations (no read-then-write).

"Exactly once" is always a unique ``_id`` insert (DuplicateKeyError = somebody
else got it): FerretDB does not apply a guarded ``find_one_and_update`` or an
``$inc`` atomically under concurrency, so neither is used for a guarantee here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import DeleteOne, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from chalicelib.store import IndexSpec, translate_errors
from chalicelib.store.batches import bulk_write

USERS = "users"
LOGIN_ATTEMPTS = "auth_login_attempts"  # one hint doc per email key: the current generation
LOGIN_SLOTS = "auth_login_slots"  # "{key}:{generation}:{n}" per attempt, "{key}:{generation}:end" when closed
REFRESH_TOKENS = "auth_refresh_tokens"
REFRESH_CLAIMS = "auth_refresh_claims"  # _id = token hash; its insert is what spends a refresh token
REFRESH_FAMILIES = "auth_refresh_families"

_DELETE_BATCH = 50  # below FerretDB's 100-ops-per-batch deadlock, whatever MONGODB_MAX_BATCH_OPS says

# A generation of sign-in slots stays open while failures come less than LOGIN_LOCK_SECONDS apart,
# so it may live LOGIN_MAX_FAILURES x LOGIN_LOCK_SECONDS; config.py caps those at 100 and 1 day.
# Expiring slots sooner would hand out fresh guesses inside a lock.
LOGIN_SLOT_TTL_SECONDS = (100 + 1) * 86400
# A spent refresh token's claim outlives the token by an hour: a store clock running ahead of the
# Lambdas' must not free a claim while the token still counts as alive.
REFRESH_CLAIM_MARGIN_SECONDS = 3600

INDEXES: list[IndexSpec] = [
    IndexSpec(collection=USERS, keys=(("email", 1),), unique=True, name="users_email_unique"),
    # Housekeeping on MongoDB (FerretDB has no TTL; see store/indexes.py). An expired refresh token
    # and its claim are refused alike whether or not they are still stored.
    IndexSpec(collection=REFRESH_TOKENS, keys=(("expiresAt", 1),), name="refresh_tokens_ttl",
              options={"expireAfterSeconds": 0}),
    IndexSpec(collection=REFRESH_CLAIMS, keys=(("expiresAt", 1),), name="refresh_claims_ttl",
              options={"expireAfterSeconds": REFRESH_CLAIM_MARGIN_SECONDS}),
    IndexSpec(collection=LOGIN_SLOTS, keys=(("at", 1),), name="login_slots_ttl",
              options={"expireAfterSeconds": LOGIN_SLOT_TTL_SECONDS}),
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
    #
    # Each sign-in takes a numbered slot "{key}:{generation}:{n}" by unique insert before
    # bcrypt runs, so parallel guesses cannot take more than LOGIN_MAX_FAILURES slots of a
    # generation. A success, an expired lock or a stale window closes the generation with
    # the "{key}:{generation}:end" marker (never removed while it matters), so every caller
    # agrees on the next generation even if the hint doc lags or goes back.

    def login_generation(self, key: str) -> int:
        """Where to start looking for the current generation (a hint: markers are the truth)."""
        with translate_errors("find sign-in generation"):
            doc = self.db[LOGIN_ATTEMPTS].find_one({"_id": key})
        return int((doc or {}).get("generation", 0))

    def generation_closed(self, key: str, generation: int) -> bool:
        with translate_errors("find sign-in generation marker"):
            return self.db[LOGIN_SLOTS].find_one({"_id": f"{key}:{generation}:end"}, {"_id": 1}) is not None

    def take_login_slot(self, key: str, generation: int, slot: int, now: dt.datetime) -> bool:
        """Take slot ``slot`` of the generation; ``False`` when another attempt already holds it."""
        try:
            with translate_errors("take sign-in slot"):
                self.db[LOGIN_SLOTS].insert_one({"_id": f"{key}:{generation}:{slot}", "at": now})
        except DuplicateKeyError:
            return False
        return True

    def login_slot_time(self, key: str, generation: int, slot: int) -> dt.datetime | None:
        with translate_errors("find sign-in slot"):
            doc = self.db[LOGIN_SLOTS].find_one({"_id": f"{key}:{generation}:{slot}"})
        return None if doc is None else doc["at"]

    def release_login_slot(self, key: str, generation: int, slot: int) -> None:
        with translate_errors("release sign-in slot"):
            self.db[LOGIN_SLOTS].delete_one({"_id": f"{key}:{generation}:{slot}"})

    def close_login_generation(self, key: str, generation: int, slots: int, now: dt.datetime) -> None:
        """End a generation (idempotent): mark it, move the hint on, drop its slots and an old marker."""
        try:
            with translate_errors("close sign-in generation"):
                self.db[LOGIN_SLOTS].insert_one({"_id": f"{key}:{generation}:end", "at": now})
        except DuplicateKeyError:
            pass  # a concurrent caller closed it: same outcome
        with translate_errors("close sign-in generation"):
            self.db[LOGIN_ATTEMPTS].update_one(
                {"_id": key}, {"$max": {"generation": generation + 1}}, upsert=True
            )
        # One DeleteOne per _id (an ``$in`` filter is a full scan on FerretDB), in batches it can take.
        stale = [f"{key}:{generation}:{n}" for n in range(1, slots + 1)] + [f"{key}:{generation - 1}:end"]
        bulk_write(self.db[LOGIN_SLOTS], [DeleteOne({"_id": _id}) for _id in stale])

    # --- refresh tokens ---------------------------------------------------------------

    def insert_refresh(self, token_hash: str, record: dict[str, Any]) -> None:
        with translate_errors("insert refresh token"):
            self.db[REFRESH_TOKENS].insert_one({"_id": token_hash, **record, "usedAt": None})

    def claim_refresh(self, token_hash: str, now: dt.datetime) -> dict[str, Any] | None:
        """Spend the token: ``None`` when it is unknown or somebody already spent it.

        The unique insert of ``{_id: token_hash}`` into ``auth_refresh_claims`` is the
        spend, so of any number of racing callers exactly one gets the record back.
        ``usedAt`` on the token is only a record for people reading the store.
        """
        record = self.find_refresh(token_hash)
        if record is None:
            return None
        try:
            with translate_errors("claim refresh token"):
                self.db[REFRESH_CLAIMS].insert_one({"_id": token_hash, "claimedAt": now,
                                                    "expiresAt": record.get("expiresAt")})
        except DuplicateKeyError:
            return None
        with translate_errors("claim refresh token"):
            self.db[REFRESH_TOKENS].update_one({"_id": token_hash}, {"$set": {"usedAt": now}})
        return {**record, "usedAt": now}

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
