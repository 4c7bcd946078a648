"""Register, sign in, refresh, ``me`` and revoke: the auth use cases.

Each function takes its dependencies (:class:`AuthDeps`: repository, publisher,
clock, keys, policy) so tests run them against an in-memory repository or the
embedded store without patching anything.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError as MarshmallowError

from chalicelib.auth.keys import KeyRing
from chalicelib.auth.passwords import dummy_hash, hash_password, verify_password
from chalicelib.auth.repository import DuplicateEmail
from chalicelib.auth.settings import AuthorizerSettings, AuthSettings
from chalicelib.auth.throttle import LoginThrottle, admit, settle_success
from chalicelib.auth.tokens import hash_refresh_token, issue_access_token, new_refresh_token
from chalicelib.contracts.errors import Conflict, Unauthorized, ValidationError
from chalicelib.contracts.events import USER_REGISTERED, derived_event_id
from chalicelib.contracts.inputs import LoginInput, RefreshTokenInput, RegisterInput
from chalicelib.events.publisher import OutgoingEvent, PublishError
from chalicelib.observability.logs import logger
from chalicelib.timestamps import aware_utc

BAD_CREDENTIALS = "Email or password is incorrect."
BAD_REFRESH = "The refresh token is invalid or expired; sign in again."
EMAIL_TAKEN = "This email address cannot be used to register. If it is yours, sign in instead."


@dataclass(frozen=True)
class AuthPolicy:
    """The settings the auth rules depend on."""

    issuer: str
    audience: str
    access_ttl_seconds: int
    refresh_ttl_seconds: int
    bcrypt_cost: int
    throttle: LoginThrottle

    @classmethod
    def from_settings(cls, s: AuthSettings, verifying: AuthorizerSettings, pepper: bytes) -> AuthPolicy:
        """Tokens are issued for the issuer and audience the authorizer checks (its section).

        ``pepper`` is the throttle's resolved key (``throttle.login_pepper``): the rules never fetch secrets.
        """
        return cls(
            issuer=verifying.jwt_issuer, audience=verifying.jwt_audience, access_ttl_seconds=s.jwt_access_ttl_seconds,
            refresh_ttl_seconds=s.jwt_refresh_ttl_seconds, bcrypt_cost=s.bcrypt_cost,
            throttle=LoginThrottle.from_settings(s, pepper),
        )


@dataclass(frozen=True)
class AuthDeps:
    repo: Any  # AuthRepository or a twin with the same methods
    publisher: Any
    clock: Callable[[], dt.datetime]
    keys: KeyRing
    policy: AuthPolicy

    def now(self) -> dt.datetime:
        """The clock, to the millisecond: what the store keeps, so re-reads compare equal."""
        now = self.clock()
        return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _load(schema_cls: type, data: Any) -> dict[str, Any]:
    try:
        return schema_cls().load(data if data is not None else {})
    except MarshmallowError as exc:
        raise ValidationError.from_messages(exc.messages) from None


def user_view(user: Mapping[str, Any]) -> dict[str, Any]:
    vehicle = user.get("vehicle")
    return {
        "id": user["_id"],
        "email": user["email"],
        "name": user["name"],
        "vehicle": None if not vehicle else {
            "brand": vehicle["brand"], "model": vehicle["model"], "batteryCapacity": float(vehicle["batteryCapacity"]),
        },
    }


# --- register ------------------------------------------------------------------------

def register(deps: AuthDeps, raw_input: Any, *, correlation_id: str | None = None) -> dict[str, Any]:
    """Validate, store (the unique email index decides races), publish USER_REGISTERED, issue tokens."""
    data = _load(RegisterInput, raw_input)
    now = deps.now()
    user = {
        "_id": str(uuid.uuid4()),
        "email": data["email"],
        "name": data["name"],
        "vehicle": {
            "brand": data["vehicle"]["brand"],
            "model": data["vehicle"]["model"],
            "batteryCapacity": float(data["vehicle"]["batteryCapacity"]),
        },
        "passwordHash": hash_password(data["password"], deps.policy.bcrypt_cost),
        "tokenVersion": 0,
        "createdAt": now,
        "registrationPublished": False,
    }
    try:
        deps.repo.insert_user(user)
    except DuplicateEmail:
        logger.info("registration refused", extra={"reason": "duplicate"})
        raise Conflict(EMAIL_TAKEN) from None
    logger.info("user registered", extra={"userId": user["_id"]})
    publish_registration(deps, user, correlation_id=correlation_id)
    return _issue(deps, user, now)


def publish_registration(deps: AuthDeps, user: Mapping[str, Any], *, correlation_id: str | None = None) -> bool:
    """Publish USER_REGISTERED after the user is stored; on failure it is retried at the next sign-in.

    The event id is derived from the user id, so a retried publish is the same
    event to every consumer. A bus outage must not lose the account (the client
    already has it), so the failure is logged and the flag stays unset.
    """
    created = aware_utc(user["createdAt"])
    event = OutgoingEvent(
        USER_REGISTERED, {"userId": user["_id"], "registeredAt": created},
        event_id=derived_event_id(USER_REGISTERED, user["_id"]), occurred_at=created,
    )
    try:
        deps.publisher.publish([event], correlation_id=correlation_id)
    except PublishError:
        logger.warning("USER_REGISTERED not published; will retry at next sign-in", extra={"userId": user["_id"]})
        return False
    deps.repo.mark_registration_published(user["_id"])
    return True


# --- login ---------------------------------------------------------------------------

def login(deps: AuthDeps, raw_input: Any, *, correlation_id: str | None = None,
          source: str | None = None) -> dict[str, Any]:
    """Same error and about the same time for an unknown email and a wrong password; guessing is slowed.

    ``source`` is the caller's hashed network (``chalicelib.auth.sources.source_of`` of the
    resolver event); without it only the per-email delay applies. The attempt is counted
    before bcrypt runs, so parallel guesses get no more password checks than the throttle
    admits, and a success gives the counts back (``chalicelib/auth/throttle.py``).
    """
    data = _load(LoginInput, raw_input)
    now = deps.now()
    admission = admit(deps.repo, deps.policy.throttle, data["email"], source, now)

    user = deps.repo.find_user_by_email(data["email"])
    stored = user["passwordHash"] if user else dummy_hash(deps.policy.bcrypt_cost)
    if not verify_password(data["password"], stored) or user is None:
        logger.info("sign-in refused", extra={"reason": "credentials"})
        raise Unauthorized(BAD_CREDENTIALS)

    settle_success(deps.repo, admission, now)
    if not user.get("registrationPublished", True):
        publish_registration(deps, user, correlation_id=correlation_id)
    logger.info("user signed in", extra={"userId": user["_id"]})
    return _issue(deps, user, now)


# --- tokens --------------------------------------------------------------------------

def _refresh_expiry(deps: AuthDeps, now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(seconds=deps.policy.refresh_ttl_seconds)


def _issue(deps: AuthDeps, user: Mapping[str, Any], now: dt.datetime, family_id: str | None = None) -> dict[str, Any]:
    """Issue an access token and a refresh token, in a new family unless rotating within one."""
    version = int(user.get("tokenVersion", 0))
    expires = _refresh_expiry(deps, now)
    if family_id is None:
        family_id = str(uuid.uuid4())
        deps.repo.create_family(family_id, user["_id"], now, expires)
    refresh = new_refresh_token()
    deps.repo.insert_refresh(hash_refresh_token(refresh), {
        "userId": user["_id"], "familyId": family_id, "tokenVersion": version, "issuedAt": now,
        "expiresAt": expires,
    })
    access = issue_access_token(
        deps.keys, user_id=user["_id"], token_version=version, issuer=deps.policy.issuer,
        audience=deps.policy.audience, ttl_seconds=deps.policy.access_ttl_seconds, now=now,
    )
    return {
        "accessToken": access,
        "refreshToken": refresh,
        "expiresIn": deps.policy.access_ttl_seconds,
        "user": user_view(user),
    }


def refresh(deps: AuthDeps, raw_input: Any) -> dict[str, Any]:
    """Rotate: the presented token is spent; presenting a spent token revokes its whole family.

    A spent token shown again means two holders (a stolen copy, or a replay), and
    nothing tells which is the owner, so every token of that sign-in stops working.
    """
    token = _load(RefreshTokenInput, raw_input)["token"]
    now = deps.now()
    token_hash = hash_refresh_token(token)
    record = deps.repo.spend_refresh(token_hash, now)
    if record is None:
        known = deps.repo.find_refresh(token_hash)
        if known is not None and known.get("usedAt") is not None:
            deps.repo.revoke_family(known["familyId"], now)
            logger.warning("refresh token reuse; family revoked", extra={"userId": known["userId"]})
        raise Unauthorized(BAD_REFRESH)
    if not deps.repo.renew_family(record["familyId"], _refresh_expiry(deps, now)):
        raise Unauthorized(BAD_REFRESH)
    user = deps.repo.find_user(record["userId"])
    if user is None or int(user.get("tokenVersion", 0)) != int(record.get("tokenVersion", 0)):
        deps.repo.revoke_family(record["familyId"], now)
        raise Unauthorized(BAD_REFRESH)
    if not user.get("registrationPublished", True):
        publish_registration(deps, user)
    return _issue(deps, user, now, family_id=record["familyId"])


# --- me and revocation ---------------------------------------------------------------

def me(deps: AuthDeps, user_id: Any, token_version: Any = None) -> dict[str, Any]:
    """The caller's profile, by the authorizer's user id only; a revoked session is refused."""
    if not isinstance(user_id, str) or not user_id:
        raise Unauthorized("Sign in and send the access token.")
    user = deps.repo.find_user(user_id)
    if user is None:
        raise Unauthorized("This account no longer exists.")
    if token_version is not None and str(token_version).isdigit() and int(token_version) < int(
            user.get("tokenVersion", 0)):
        raise Unauthorized("This session was revoked; sign in again.")
    return user_view(user)


def revoke_user(deps: AuthDeps, user_id: str) -> int | None:
    """Revoke every session of a user: refresh tokens and ``me`` refuse at once, access tokens expire.

    Returns the new token version (put ``userId:<version>`` in
    ``JWT_REVOKED_USERS`` to refuse outstanding access tokens before they expire).
    """
    version = deps.repo.bump_token_version(user_id)
    logger.warning("user sessions revoked", extra={"userId": user_id, "tokenVersion": version})
    return version
