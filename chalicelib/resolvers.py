"""How every resolver Lambda answers AppSync: the domain's Powertools ``Router`` picks the field.

A domain declares its GraphQL fields on a :class:`DomainRouter` in ``chalicelib/<domain>/graphql.py``
(``@router.resolver(type_name="Query", field_name="wallet")``, one function per field, its GraphQL
arguments as keyword parameters) and its ``entry.resolve`` hands AppSync's event to :func:`serve`
with a function that builds what the fields need. Decided here, once for every domain:

- A field the router does not serve (or an event without ``info``) is a ``ValidationError``, as is
  an argument the field does not declare; both before anything is built. AppSync checks arguments
  against the schema, so only a caller that bypasses it meets the second, and without the check
  Python's ``TypeError`` would be the client's ``errorType``.
- Nothing is caught: ``AppSyncResolver`` re-raises what it has no exception handler for, and AppSync
  reports the raised class's name as the GraphQL ``errorType``, so the ``ApiError`` subclasses of
  ``chalicelib/contracts/errors.py`` (``ValidationError``, ``NotFound``, ...) are what clients see.
- A field reads its call through :func:`current_call`, not Powertools' ``router.current_event``.
  Powertools keeps the current event on the resolver object and on the ``Router`` class: one event
  per process in Lambda, but the local stack's in-process server answers concurrent requests in
  threads of one process, where two callers would read each other's identity. A resolver object
  per call and a context variable keep each call to itself.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import AppSyncResolver
from aws_lambda_powertools.event_handler.appsync import Router
from aws_lambda_powertools.utilities.data_classes import AppSyncResolverEvent

from chalicelib.contracts.errors import UNKNOWN_FIELD, ValidationError

Field = TypeVar("Field", bound=Callable[..., Any])


class DomainRouter(Router):
    """Powertools' ``Router``, which also records the fields it serves and the arguments each declares."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name  # as clients read it: "The billing resolver does not serve this field."
        self._arguments: dict[str, frozenset[str]] = {}

    def resolver(self, type_name: str = "*", field_name: str | None = None) -> Callable[[Field], Field]:
        register = super().resolver(type_name=type_name, field_name=field_name)

        def record(func: Field) -> Field:
            self._arguments[f"{type_name}.{field_name}"] = frozenset(inspect.signature(func).parameters)
            return register(func)

        return record

    @property
    def fields(self) -> frozenset[str]:
        """``Type.field`` for every field registered, as ``appsync/resolvers.json`` names them."""
        return frozenset(self._arguments)

    def arguments_of(self, type_name: Any, field_name: Any) -> frozenset[str] | None:
        """The argument names ``Type.field`` declares; ``None`` when this router does not serve it."""
        return self._arguments.get(f"{type_name}.{field_name}", self._arguments.get(f"*.{field_name}"))


@dataclass
class ResolverCall:
    """One resolver invocation, as a field function sees it."""

    event: AppSyncResolverEvent
    lambda_context: Any
    build_deps: Callable[[], Any] = field(repr=False)

    @cached_property
    def deps(self) -> Any:
        """The domain's dependencies, built on first use: a field that refuses the caller never touches the store."""
        return self.build_deps()

    @property
    def caller(self) -> Mapping[str, Any]:
        """``resolverContext`` as the Lambda authorizer set it (``userId``, ``tokenVersion``); empty without one."""
        identity = self.event.get("identity")
        context = identity.get("resolverContext") if isinstance(identity, Mapping) else None
        return context if isinstance(context, Mapping) else {}

    @property
    def request_id(self) -> str | None:
        """The Lambda request id: the correlation id of the events this call publishes, and on its log lines."""
        return getattr(self.lambda_context, "aws_request_id", None)


_current: ContextVar[ResolverCall] = ContextVar("resolver_call")


def current_call() -> ResolverCall:
    """The call being resolved; only inside a field function that :func:`serve` is running."""
    return _current.get()


def serve(router: DomainRouter, event: Any, context: Any, build_deps: Callable[[], Any]) -> Any:
    """Answer one AppSync direct Lambda resolver request with ``router``'s field; its errors propagate."""
    request = _checked(router, event)
    resolver = AppSyncResolver()
    resolver.include_router(router)
    token = _current.set(ResolverCall(AppSyncResolverEvent(request), context, build_deps))
    try:
        return resolver.resolve(request, context)
    finally:
        _current.reset(token)


def _checked(router: DomainRouter, event: Any) -> dict[str, Any]:
    """``event`` with its arguments as a dict, if ``router`` serves its field with those argument names."""
    typed = AppSyncResolverEvent(event) if isinstance(event, Mapping) else None
    declared = None if typed is None else router.arguments_of(typed.info.get("parentTypeName"),
                                                                typed.info.get("fieldName"))
    if typed is None or declared is None:
        raise ValidationError(f"The {router.name} resolver does not serve this field.",
                              details={"fieldName": "unknown"})
    arguments = typed.get("arguments")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, Mapping):
        raise ValidationError("Invalid input: arguments: must be an object.",
                              details={"arguments": "must be an object"})
    unknown = [name for name in arguments if name not in declared]
    if unknown:  # the names are the sender's text: reported as "arguments._unknown", never repeated
        raise ValidationError.from_messages({name: [UNKNOWN_FIELD] for name in unknown}, prefix="arguments")
    return {**event, "arguments": dict(arguments)}
