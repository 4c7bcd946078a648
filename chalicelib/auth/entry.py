"""Lambda glue for auth: the AppSync authorizer and the auth resolver.

``authorize`` is on every uncached API call, so this module imports only the
authorizer's own path (settings, keys, pyjwt + cryptography). The resolver's
dependencies (pymongo, boto3, marshmallow, Powertools) load inside
``resolve``, on the resolver Lambda only.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from chalicelib import bootstrap
from chalicelib.auth.authorizer import DENY, AuthorizerConfig, DenyList, decide
from chalicelib.auth.keys import load_keyring
from chalicelib.config import Settings


@lru_cache(maxsize=4)
def _authorizer_config(settings: Settings) -> AuthorizerConfig:
    return AuthorizerConfig(
        keys=load_keyring(settings),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        cache_seconds=settings.jwt_authorizer_cache_seconds,
        deny_list=DenyList.parse(settings.jwt_revoked_users),
    )


def authorize(event: Any) -> dict[str, Any]:
    """AppSync Lambda authorizer: ``{isAuthorized, resolverContext, deniedFields, ttlOverride}``."""
    try:
        config = _authorizer_config(bootstrap.settings())
    except Exception as exc:  # misconfiguration must deny, never let a request through or crash
        from chalicelib.observability.logs import logger

        logger.error("authorizer misconfigured", extra={"errorClass": type(exc).__name__})
        return dict(DENY)
    return decide(event, config, bootstrap.utc_now())


def _deps():
    from chalicelib.auth.repository import INDEXES, AuthRepository
    from chalicelib.auth.service import AuthDeps, AuthPolicy

    settings = bootstrap.settings()
    db = bootstrap.indexed_database(INDEXES, "auth")  # the unique email index makes registration safe
    return AuthDeps(
        repo=AuthRepository(db),
        publisher=bootstrap.publisher(),
        clock=bootstrap.utc_now,
        keys=load_keyring(settings),
        policy=AuthPolicy.from_settings(settings),
    )


def resolve(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Dispatch ``register``, ``login``, ``refreshToken`` and ``me``; errors are ``ApiError`` subclasses."""
    from chalicelib.auth import service
    from chalicelib.contracts.errors import ValidationError

    field = ((event or {}).get("info") or {}).get("fieldName")
    args = (event or {}).get("arguments") or {}
    correlation_id = getattr(context, "aws_request_id", None)
    if field not in {"register", "login", "refreshToken", "me"}:
        raise ValidationError("The auth resolver does not serve this field.", details={"fieldName": "unknown"})
    deps = _deps()
    if field == "register":
        return service.register(deps, args.get("input"), correlation_id=correlation_id)
    if field == "login":
        return service.login(deps, args.get("input"), correlation_id=correlation_id)
    if field == "refreshToken":
        return service.refresh(deps, {"token": args.get("token")})
    resolver_context = ((event.get("identity") or {}).get("resolverContext")) or {}
    return service.me(deps, resolver_context.get("userId"), resolver_context.get("tokenVersion"))
