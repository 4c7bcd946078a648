"""Auth's settings, in two sections, because the two Lambdas must not share more than they need.

:class:`AuthorizerSettings` is what ``authorize`` reads on every uncached API call: who
issues tokens and for whom, the public keys that verify them, the deny-list and the cache
cap. :class:`AuthSettings` is what only the auth resolver reads: the signing key, token
lifetimes, bcrypt and the sign-in throttle. The resolver loads both (it issues what the
authorizer checks); the authorizer loads only its own, so a bad ``BCRYPT_COST`` cannot deny
every call, and the signing key's variables are never read on the request path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from chalicelib.config import Section, integer, secret_name, setting


@dataclass(frozen=True)
class AuthorizerSettings(Section):
    """The AppSync authorizer's settings (the auth resolver reads them too)."""

    name: ClassVar[str] = "authorizer"

    jwt_issuer: str = setting("JWT_ISSUER", "https://auth.jucr.local")
    jwt_audience: str = setting("JWT_AUDIENCE", "jucr-api")
    jwt_public_key: str = setting("JWT_PUBLIC_KEY", "")
    # Public keys only, written by the deploy step from the signing-key secret.
    jwt_public_keys_secret_id: str = setting("JWT_PUBLIC_KEYS_SECRET_ID", "", secret_name())
    jwt_previous_public_keys: str = setting("JWT_PREVIOUS_PUBLIC_KEYS", "")
    # Comma-separated "userId" (refuse every token) or "userId:N" (refuse tokens with ver < N).
    jwt_revoked_users: str = setting("JWT_REVOKED_USERS", "")
    # Upper bound for the authorizer's ttlOverride (AppSync caches a verdict at most this long).
    jwt_authorizer_cache_seconds: int = setting("JWT_AUTHORIZER_CACHE_SECONDS", "300", integer(0, 3600))


@dataclass(frozen=True)
class AuthSettings(Section):
    """The auth resolver's own settings: signing, lifetimes, hashing and sign-in throttling."""

    name: ClassVar[str] = "auth"

    jwt_private_key: str = setting("JWT_PRIVATE_KEY", "", secret=True)
    jwt_key_secret_id: str = setting("JWT_KEY_SECRET_ID", "", secret_name())
    jwt_access_ttl_seconds: int = setting("JWT_ACCESS_TTL_SECONDS", "900", integer(60, 86400))
    jwt_refresh_ttl_seconds: int = setting("JWT_REFRESH_TTL_SECONDS", "2592000", integer(3600, 31536000))
    bcrypt_cost: int = setting("BCRYPT_COST", "12", integer(4, 16))
    # The throttle (auth/throttle.py) delays, never locks. Failures per email and source before each
    # further attempt waits min(cap, base * 2**(failures - free)).
    login_free_failures: int = setting("LOGIN_FREE_FAILURES", "5", integer(1, 100))
    login_delay_base_seconds: int = setting("LOGIN_DELAY_BASE_SECONDS", "30", integer(1, 3600))
    login_delay_cap_seconds: int = setting("LOGIN_DELAY_CAP_SECONDS", "900", integer(1, 86400))
    # Failures one source may have across all emails per window, before its attempts wait for the window's end.
    login_source_max_failures: int = setting("LOGIN_SOURCE_MAX_FAILURES", "50", integer(1, 100000))
    login_source_window_seconds: int = setting("LOGIN_SOURCE_WINDOW_SECONDS", "900", integer(1, 86400))
    # The HMAC key of the throttle's document ids (auth/throttle.py ``login_pepper``): a plain value for local
    # use and tests, or the secret's name, as deployed stages set it. Neither: the dev pepper, local/test only.
    login_key_pepper: str = setting("LOGIN_KEY_PEPPER", "", secret=True)
    login_key_pepper_secret_id: str = setting("LOGIN_KEY_PEPPER_SECRET_ID", "", secret_name())
