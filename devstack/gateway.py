"""The AppSync stand-in: run ``appsync/schema.graphql`` with graphql-core, calling
the same Lambda handlers through the same resolver map and authorizer.

It builds AppSync's direct-Lambda resolver event (``arguments``, ``identity``
with the authorizer's ``resolverContext``, ``info``, ``request.headers`` with the
caller's address in ``x-forwarded-for`` where AppSync puts it) and its authorizer event
(``authorizationToken``, ``requestContext``), so the handlers cannot tell the
difference. Errors come back AppSync-style: ``{message, errorType, path}``.

The API's limits (``appsync/limits.py``: query depth, resolver count, introspection off
in prod) are checked first, with the same numbers the deploy step gives AppSync, so an
aliased flood of ``login`` is refused before a single resolver runs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from graphql import GraphQLError, build_schema, execute, parse, validate
from graphql.language import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
)

from appsync.limits import validation_rules
from appsync.prelude import APPSYNC_PRELUDE
from chalicelib.auth.sources import AWS_HOPS_AFTER_VIEWER
from chalicelib.config import CoreSettings, get_section
from chalicelib.contracts.errors import ApiError
from chalicelib.observability.logs import logger
from devstack.graphql_errors import public_message
from devstack.lambda_context import LocalLambdaContext

APPSYNC_DIR = Path(__file__).resolve().parents[1] / "appsync"


Invoker = Callable[[str, dict], Any]
# The edge node AppSync's origin appends after the viewer: locally, the gateway itself.
LOCAL_EDGE = "127.0.0.1"


@lru_cache(maxsize=1)
def load_schema():
    return build_schema(APPSYNC_PRELUDE + (APPSYNC_DIR / "schema.graphql").read_text())


@lru_cache(maxsize=1)
def load_resolver_map() -> dict[str, Any]:
    return json.loads((APPSYNC_DIR / "resolvers.json").read_text())


def in_process_invoker(app: Any) -> Invoker:
    """Call the Chalice app's pure Lambda function ``name`` as Lambda would.

    The app is handed over by the route that serves the request (the blueprint's
    ``current_app``), so nothing here imports ``app.py`` back.
    """
    functions = {function.name: function for function in app.pure_lambda_functions}

    def invoke(name: str, event: dict) -> Any:
        return functions[name](event, LocalLambdaContext(function_name=name))

    return invoke


def _error(message: str, error_type: str, path: list | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"message": message, "errorType": error_type}
    if path:
        out["path"] = path
    return out


class Gateway:
    def __init__(self, invoke: Invoker, stage: str | None = None) -> None:
        self.invoke = invoke
        self.schema = load_schema()
        self.resolver_map = load_resolver_map()
        self.iam_fields = frozenset(self.resolver_map["iam_fields"])
        self.public_fields = frozenset(self.resolver_map["public_fields"])
        self.stage = stage or get_section(CoreSettings).stage
        self.limit_rules = validation_rules(self.resolver_map["resolvers"], self.stage)

    def handle(self, body: Any, authorization: str | None, iam: bool = False,
               source_ip: str | None = None, forwarded_for: str | None = None) -> tuple[int, dict[str, Any]]:
        """Execute one GraphQL request; returns (HTTP status, response body).

        ``iam`` is a SigV4-signed caller (EventBridge's AppSync target, with the
        events role): it may call the ``@aws_iam`` publish mutations and nothing else.
        ``source_ip`` is the TCP peer and ``forwarded_for`` the ``X-Forwarded-For`` the client
        sent: resolvers get both in ``x-forwarded-for`` as AppSync builds it (``_headers``).
        """
        try:
            document, variables = self._parse(body)
            fields = self._top_level_fields(document, body.get("operationName"))
            if iam:
                identity, denied = self._iam_identity(fields)
            else:
                identity, denied = self._authorize(fields, body, variables, authorization)
        except _Refused as refused:
            return refused.status, {"errors": [refused.payload]}
        headers = _headers(authorization, source_ip, forwarded_for)
        resolver = self._field_resolver(identity, denied, variables, headers, iam)
        result = execute(self.schema, document, variable_values=variables, field_resolver=resolver,
                         operation_name=body.get("operationName"))
        errors = [
            err.original_error.payload if isinstance(err.original_error, _Resolved)
            else _error(public_message(err), "ValidationError", list(err.path or []))
            for err in result.errors or []
        ]
        response: dict[str, Any] = {"data": result.data}
        if errors:
            response["errors"] = errors
        return 200, response

    def _parse(self, body: Any):
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            raise _Refused(400, _error("Request body must be a JSON object with a 'query' string.", "BadRequest"))
        variables = body.get("variables") or {}
        if not isinstance(variables, dict):
            raise _Refused(400, _error("'variables' must be a JSON object.", "BadRequest"))
        try:
            document = parse(body["query"])
        except GraphQLError as exc:
            raise _Refused(400, _error(public_message(exc), "MalformedHttpRequestException")) from None
        # The limits first, on their own: a flood is refused without the full validation's cost.
        problems = validate(self.schema, document, self.limit_rules) or validate(self.schema, document)
        if problems:
            raise _Refused(400, _error("; ".join(public_message(p) for p in problems), "ValidationError"))
        return document, variables

    def _authorize(self, fields: list[str], body: dict, variables: dict, authorization: str | None):
        """AppSync's auth modes: IAM-only publish fields, API-key fields, else the Lambda authorizer."""
        if any(f in self.iam_fields for f in fields):
            raise _Refused(401, _error("This field is only callable with IAM credentials.", "Unauthorized"))
        if not authorization:
            if all(f in self.public_fields for f in fields):
                return None, set()
            raise _Refused(401, _error("Missing Authorization header: sign in and send the access token.",
                                       "Unauthorized"))
        identity, denied = self.lambda_identity(authorization, body["query"], variables, body.get("operationName"))
        if identity is None:
            raise _Refused(401, _error("You are not authorized to make this call.", "Unauthorized"))
        return identity, denied

    def lambda_identity(self, authorization: str, query: str, variables: dict,
                        operation_name: str | None) -> tuple[dict[str, Any] | None, set[str]]:
        """Ask the Lambda authorizer, as AppSync does for HTTP and real-time requests alike.

        Returns ``(None, set())`` when refused, else the identity resolvers see and the denied fields.
        """
        verdict = self.invoke(self.resolver_map["authorizer"], {
            "authorizationToken": authorization,
            "requestContext": {
                "apiId": "local", "accountId": "123456789012", "requestId": str(uuid.uuid4()),
                "queryString": query, "operationName": operation_name, "variables": variables,
            },
        })
        if not isinstance(verdict, dict) or not verdict.get("isAuthorized"):
            return None, set()
        return {"resolverContext": verdict.get("resolverContext") or {}}, set(verdict.get("deniedFields") or [])

    def _iam_identity(self, fields: list[str]) -> tuple[dict[str, Any], set[str]]:
        """The events role may call the IAM-only fields, and only those (its policy names each)."""
        if not fields or not set(fields) <= self.iam_fields:
            raise _Refused(401, _error("IAM callers may only call the publish mutations.", "Unauthorized"))
        return {"accountId": "123456789012", "userArn": "arn:aws:sts::123456789012:assumed-role/events"}, set()

    def _field_resolver(self, identity, denied: set[str], variables: dict, headers: dict[str, str], iam: bool = False):
        iam_fields = self.iam_fields

        def resolve(source, info, **args):
            if info.path.prev is not None:  # nested field: plain property access
                return source.get(info.field_name) if isinstance(source, dict) else getattr(
                    source, info.field_name, None)
            key = f"{info.parent_type.name}.{info.field_name}"
            if (key in iam_fields) != iam:  # second line of defence, whatever the query's shape
                raise _Resolved(_error(f"Not authorized to access {key}.", "Unauthorized", [info.field_name]))
            if key in denied:
                raise _Resolved(_error(f"Not authorized to access {key}.", "Unauthorized", [info.field_name]))
            function = self.resolver_map["resolvers"].get(key)
            if function is None or function == "NONE":
                return args.get("input")
            event = {
                "arguments": args, "identity": identity, "source": None,
                "request": {"headers": headers},
                "info": {"fieldName": info.field_name, "parentTypeName": info.parent_type.name,
                         "variables": variables, "selectionSetList": []},
                "prev": None, "stash": {},
            }
            try:
                return self.invoke(function, event)
            except ApiError as exc:
                raise _Resolved(_error(exc.message, exc.error_type, [info.field_name])) from None
            except Exception as exc:  # never a stack trace to the client
                logger.exception("resolver failed", extra={"field": key, "errorClass": type(exc).__name__})
                raise _Resolved(_error("Internal error; see the server log.", "InternalError",
                                       [info.field_name])) from None

        return resolve

    def _top_level_fields(self, document, operation_name: str | None) -> list[str]:
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        names: list[str] = []
        for definition in document.definitions:
            if not isinstance(definition, OperationDefinitionNode):
                continue
            if operation_name and definition.name and definition.name.value != operation_name:
                continue
            root = {"query": "Query", "mutation": "Mutation", "subscription": "Subscription"}[
                definition.operation.value]
            names.extend(f"{root}.{name}" for name in _root_field_names(definition.selection_set, fragments))
        return names


def _headers(authorization: str | None, source_ip: str | None, forwarded_for: str | None) -> dict[str, str]:
    """The request headers a resolver sees: the token masked, ``x-forwarded-for`` as AppSync's is.

    CloudFront appends the address it was connected from to whatever the client wrote, and
    AppSync's origin appends the edge node (``AWS_HOPS_AFTER_VIEWER`` entries), so
    ``source_of`` reads the peer whatever the client put first. Without a peer (an IAM call
    from the bus) there is no header at all: the client's entries alone would choose the source.
    """
    headers = {"authorization": "***"} if authorization else {}
    if source_ip:
        written = [forwarded_for.strip()] if forwarded_for and forwarded_for.strip() else []
        headers["x-forwarded-for"] = ", ".join([*written, source_ip, *[LOCAL_EDGE] * AWS_HOPS_AFTER_VIEWER])
    return headers


def _root_field_names(selection_set: Any, fragments: dict[str, Any], seen: frozenset = frozenset()) -> list[str]:
    """Root fields through fragments and inline fragments too, so no query shape hides one."""
    out: list[str] = []
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if not selection.name.value.startswith("__"):
                out.append(selection.name.value)
        elif isinstance(selection, InlineFragmentNode):
            out.extend(_root_field_names(selection.selection_set, fragments, seen))
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                out.extend(_root_field_names(fragment.selection_set, fragments, seen | {selection.name.value}))
    return out


class _Refused(Exception):
    """The request is refused before execution (bad request, not authorized)."""

    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        super().__init__(payload["message"])
        self.status, self.payload = status, payload


class _Resolved(Exception):
    """Carries an AppSync-shaped error through graphql-core's executor."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload["message"])
        self.payload = payload
