"""Access tokens (signed JWTs) and refresh tokens (opaque, stored hashed).

Access token claims: ``iss``, ``aud``, ``sub`` (user id), ``iat``, ``exp``,
``jti`` and ``ver`` (the user's token version at issue time, see
``chalicelib.auth.authorizer`` for how revocation uses it). Verification pins
``EdDSA``: the ``alg`` header is never trusted to pick the algorithm.

Refresh tokens are 256 random bits, not JWTs: the server must look them up
anyway (rotation, family revocation), so a signature would add nothing. Only
their SHA-256 is stored; with that much entropy a salt or a slow hash buys
nothing, and a leaked table cannot be replayed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from chalicelib.auth.keys import ALGORITHM, KeyRing

REQUIRED_CLAIMS = ("iss", "aud", "sub", "iat", "exp", "jti")
LEEWAY_SECONDS = 5


class InvalidToken(Exception):
    """The token is missing, malformed, forged, expired or for someone else."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    expires_at: int
    token_version: int
    jti: str


def issue_access_token(
    keys: KeyRing, *, user_id: str, token_version: int, issuer: str, audience: str, ttl_seconds: int,
    now: dt.datetime,
) -> str:
    issued = int(now.timestamp())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": user_id,
        "iat": issued,
        "exp": issued + ttl_seconds,
        "jti": str(uuid.uuid4()),
        "ver": token_version,
    }
    return jwt.encode(claims, keys.signing_key(), algorithm=ALGORITHM, headers={"kid": keys.kid, "typ": "JWT"})


def verify_access_token(token: Any, keys: KeyRing, *, issuer: str, audience: str, now: dt.datetime) -> AccessClaims:
    """Check signature (EdDSA only), issuer, audience, expiry and claim shapes; raise ``InvalidToken``."""
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise InvalidToken("missing or oversized token")
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    try:
        key = keys.verifying_key(jwt.get_unverified_header(token).get("kid"))
        if key is None:
            raise InvalidToken("unknown signing key")
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": list(REQUIRED_CLAIMS), "verify_iat": False, "verify_exp": False},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(type(exc).__name__) from None
    # Expiry is checked here against the injected clock (pyjwt would use the wall clock).
    exp, ver, sub = claims.get("exp"), claims.get("ver", 0), claims.get("sub")
    if not isinstance(exp, int) or isinstance(exp, bool) or exp + LEEWAY_SECONDS < now.timestamp():
        raise InvalidToken("expired")
    if not isinstance(ver, int) or isinstance(ver, bool) or not isinstance(sub, str) or not sub:
        raise InvalidToken("bad claims")
    return AccessClaims(user_id=sub, expires_at=exp, token_version=ver, jti=str(claims["jti"]))


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
