"""The AppSync Lambda authorizer decision: token in, verdict out, no I/O.

Revocation without a database on the hot path
----------------------------------------------
Every access token carries ``ver``, the user's ``tokenVersion`` when it was
issued. Revoking a user (``service.revoke_user``) bumps that version in the
store, which at once refuses the user's refresh tokens and ``me`` (both read the
user anyway). Access tokens already out live at most ``JWT_ACCESS_TTL_SECONDS``
(15 min by default). For a user who must be locked out *before* that, the
authorizer checks a small deny-list, ``JWT_REVOKED_USERS``: comma-separated
``userId`` (refuse every token) or ``userId:N`` (refuse tokens with ``ver`` < N,
i.e. issued before the N-th revocation, so the user can sign in again).

Why a deny-list in the environment and not a Mongo lookup: the authorizer runs
before every uncached request; a lookup would put pymongo's import (~150 ms) on
its cold start and a network round trip on every call, and make every API call
fail when the store is down. The list is tiny (only emergency cases, removed
once their tokens have expired), a set lookup is free, and updating a Lambda's
environment starts fresh processes that read it. ``ttlOverride`` is capped at
``JWT_AUTHORIZER_CACHE_SECONDS`` so AppSync's cache never outlives the token
and a revocation takes effect within that cap.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.data_classes.appsync_authorizer_event import (
    AppSyncAuthorizerEvent,
    AppSyncAuthorizerResponse,
)

from chalicelib.auth.keys import KeyRing
from chalicelib.auth.tokens import InvalidToken, verify_access_token

DENY: dict[str, Any] = AppSyncAuthorizerResponse(authorize=False, max_age=0).asdict()


@dataclass(frozen=True)
class DenyList:
    """Revoked users: ``None`` = every token refused, ``N`` = tokens with ``ver`` < N refused."""

    entries: Mapping[str, int | None]

    @classmethod
    def parse(cls, text: str) -> DenyList:
        entries: dict[str, int | None] = {}
        for raw in text.split(","):
            item = raw.strip()
            if not item:
                continue
            user_id, _, version = item.partition(":")
            entries[user_id.strip()] = int(version) if version.strip().isdigit() else None
        return cls(entries)

    def refuses(self, user_id: str, token_version: int) -> bool:
        if user_id not in self.entries:
            return False
        minimum = self.entries[user_id]
        return minimum is None or token_version < minimum


@dataclass(frozen=True)
class AuthorizerConfig:
    keys: KeyRing
    issuer: str
    audience: str
    cache_seconds: int
    deny_list: DenyList


def _token(event: Any) -> Any:
    """The request's ``authorizationToken``; ``None`` for a request without one or not shaped like AppSync's."""
    if not isinstance(event, Mapping):
        return None
    typed = event if isinstance(event, AppSyncAuthorizerEvent) else AppSyncAuthorizerEvent(dict(event))
    try:
        return typed.authorization_token
    except KeyError:
        return None


def decide(event: AppSyncAuthorizerEvent | Mapping[str, Any] | None, config: AuthorizerConfig,
           now: dt.datetime) -> dict[str, Any]:
    """AppSync's authorizer contract; any doubt answers ``isAuthorized: false``, never an exception."""
    token = _token(event)
    try:
        claims = verify_access_token(token, config.keys, issuer=config.issuer, audience=config.audience, now=now)
    except InvalidToken:
        return dict(DENY)
    if config.deny_list.refuses(claims.user_id, claims.token_version):
        return dict(DENY)
    remaining = claims.expires_at - int(now.timestamp())
    if remaining <= 0:
        return dict(DENY)
    return AppSyncAuthorizerResponse(
        authorize=True,
        resolver_context={"userId": claims.user_id, "tokenVersion": str(claims.token_version)},
        max_age=max(0, min(remaining, config.cache_seconds)),
    ).asdict()
