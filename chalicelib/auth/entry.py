"""Lambda glue for auth: the AppSync authorizer and the auth resolver.

``authorize`` is on every uncached API call, so this module imports only the
authorizer's own path (its settings sections, keys, pyjwt + cryptography, Powertools'
event data classes). The resolver's fields (``graphql.py``) and their dependencies
(pymongo, boto3, Powertools' event handler) load inside ``resolve``, on the resolver
Lambda only. The authorizer validates only ``CoreSettings`` and ``AuthorizerSettings``:
a malformed billing or sign-in setting cannot make it deny every call.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from chalicelib import bootstrap
from chalicelib.auth.authorizer import DENY, AuthorizerConfig, DenyList, decide
from chalicelib.auth.keys import load_keyring, load_verifying_keys
from chalicelib.auth.settings import AuthorizerSettings, AuthSettings
from chalicelib.config import ConfigError, CoreSettings

if TYPE_CHECKING:  # imported inside _deps at run time: the authorizer never loads the service
    from chalicelib.auth.service import AuthDeps


@lru_cache(maxsize=4)
def _authorizer_config(settings: AuthorizerSettings, stage: str) -> AuthorizerConfig:
    return AuthorizerConfig(
        keys=load_verifying_keys(settings, stage),  # public keys only: the authorizer never sees the signing key
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        cache_seconds=settings.jwt_authorizer_cache_seconds,
        deny_list=DenyList.parse(settings.jwt_revoked_users),
    )


def authorize(event: Any) -> dict[str, Any]:
    """AppSync Lambda authorizer: ``{isAuthorized, resolverContext, ttlOverride}`` (``authorizer.decide``)."""
    try:
        config = _authorizer_config(bootstrap.settings(AuthorizerSettings), bootstrap.settings(CoreSettings).stage)
    except Exception as exc:  # misconfiguration must deny, never let a request through or crash
        from chalicelib.observability.logs import logger, scrub

        extra = {"errorClass": type(exc).__name__}
        if isinstance(exc, ConfigError):
            # Which variable or secret id and which rule: on-call needs it, and a ConfigError never shows a
            # secret (masked as ***) nor a secret's contents. Any other error's text is not ours: left out.
            extra["reason"] = str(scrub(str(exc)))[:500]
        logger.error("authorizer misconfigured", extra=extra)
        return dict(DENY)
    return decide(event, config, bootstrap.utc_now())


def _deps() -> AuthDeps:
    from chalicelib.auth.repository import INDEXES, AuthRepository
    from chalicelib.auth.service import AuthDeps, AuthPolicy
    from chalicelib.auth.throttle import login_pepper

    own, verifying = bootstrap.settings(AuthSettings), bootstrap.settings(AuthorizerSettings)
    stage = bootstrap.settings(CoreSettings).stage
    db = bootstrap.indexed_database(INDEXES, "auth")  # the unique email index makes registration safe
    # Fetched once per process (bootstrap.secret_string caches it), like the store URI.
    pepper = login_pepper(bootstrap.resolved_secret(own.login_key_pepper, own.login_key_pepper_secret_id), stage)
    return AuthDeps(
        repo=AuthRepository(db),
        publisher=bootstrap.publisher(),
        clock=bootstrap.utc_now,
        keys=load_keyring(own, verifying, stage),
        policy=AuthPolicy.from_settings(own, verifying, pepper),
    )


def resolve(event: dict[str, Any], context: Any) -> Any:
    """``register``, ``login``, ``refreshToken`` and ``me`` (``auth/graphql.py``); errors are ``ApiError``s."""
    from chalicelib.auth.graphql import router
    from chalicelib.resolvers import serve

    return serve(router, event, context, _deps)
