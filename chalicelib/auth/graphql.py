"""The auth fields AppSync sends to the ``auth_resolver`` Lambda (``appsync/resolvers.json``).

``register``, ``login`` and ``refreshToken`` are public (API key); ``me`` is called with an access
token, whose ``userId`` and ``tokenVersion`` the authorizer put in ``resolverContext``. Each field
hands its GraphQL arguments to ``service``, which validates them. Only the resolver Lambda loads
this module (``entry.resolve`` imports it inside): the authorizer's cold start never pays for it.
"""

from __future__ import annotations

from typing import Any

from chalicelib.auth import service
from chalicelib.auth.service import AuthDeps
from chalicelib.auth.sources import source_of
from chalicelib.resolvers import DomainRouter, current_call

router = DomainRouter("auth")


def _deps() -> AuthDeps:
    return current_call().deps


@router.resolver(type_name="Mutation", field_name="register")
def register(input: Any = None) -> dict[str, Any]:
    return service.register(_deps(), input, correlation_id=current_call().request_id)


@router.resolver(type_name="Mutation", field_name="login")
def login(input: Any = None) -> dict[str, Any]:
    call = current_call()
    # the caller's hashed network: the throttle slows that source, never the owner elsewhere
    return service.login(_deps(), input, correlation_id=call.request_id, source=source_of(call.event.raw_event))


@router.resolver(type_name="Mutation", field_name="refreshToken")
def refresh_token(token: Any = None) -> dict[str, Any]:
    return service.refresh(_deps(), {"token": token})


@router.resolver(type_name="Query", field_name="me")
def me() -> dict[str, Any]:
    caller = current_call().caller
    return service.me(_deps(), caller.get("userId"), caller.get("tokenVersion"))
