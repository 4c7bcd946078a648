"""The AppSync real-time endpoint, locally: WebSocket, subprotocol ``graphql-ws``.

AppSync serves real-time on a host of its own, so this runs on a port of its
own. It speaks what AppSync clients (gql, aws-amplify, the subscription link)
speak: auth from the ``header`` query parameter or a ``header-<base64url>``
subprotocol; ``connection_init`` -> ``connection_ack`` (``connectionTimeoutMs``)
and ``ka`` keep-alives; ``start`` (payload ``data`` is a JSON string, auth in
``extensions.authorization``) -> ``start_ack`` -> ``data``...; ``stop`` ->
``complete``; ``error`` / ``connection_error`` with AppSync-shaped errors.

Authorization is the same Lambda authorizer the HTTP endpoint calls, at
connection and again at every ``start`` (as AppSync does). The per-user guard
is the deploy step's Velocity template, rendered with airspeed. graphql-core's
``subscribe`` executes each subscription's selection on every published event.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import inspect
import json
import ssl
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

from graphql import ExecutionResult, GraphQLError, OperationType, get_operation_ast, parse, subscribe, validate
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from appsync.subscriptions import subscribed_mutations, subscription_resolvers
from devstack.gateway import Gateway
from devstack.realtime_hub import Hub
from devstack.vtl import Unauthorized, render_request

SUBPROTOCOL = "graphql-ws"
CONNECTION_TIMEOUT_MS = 300_000  # what AppSync announces; clients reconnect after this much silence
GUARD_TEMPLATES = {path: spec["requestMappingTemplate"] for path, spec in subscription_resolvers("NONE").items()}


def _error(error_type: str, message: str) -> dict[str, Any]:
    return {"errorType": error_type, "message": message}


def _b64_json(text: str) -> dict[str, Any] | None:
    """Both base64 alphabets and missing padding: clients differ (gql: standard, amplify: url-safe)."""
    try:
        raw = base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError):
        return None
    return value if isinstance(value, dict) else None


def connection_header(path: str, subprotocols: list[str]) -> dict[str, Any] | None:
    """The auth header from ``?header=`` or from a ``header-<base64url>`` subprotocol."""
    for value in parse_qs(urlsplit(path).query).get("header", []):
        header = _b64_json(value)
        if header is not None:
            return header
    for protocol in subprotocols:
        if protocol.startswith("header-"):
            header = _b64_json(protocol[len("header-"):])
            if header is not None:
                return header
    return None


def _token(header: dict[str, Any] | None) -> str | None:
    header = header or {}
    return header.get("Authorization") or header.get("authorization")


class _Refused(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.payload = _error(error_type, message)


class RealtimeServer:
    """One WebSocket server on its own event loop thread; ``publish`` may be called from any thread."""

    def __init__(self, gateway: Gateway, host: str = "127.0.0.1", port: int = 0,
                 tls: ssl.SSLContext | None = None, keepalive_seconds: float = 60.0) -> None:
        self.gateway, self.host, self.port, self.tls = gateway, host, port, tls
        self.keepalive_seconds = keepalive_seconds
        self.mutations = subscribed_mutations(gateway.schema)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.hub: Hub | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://{self.host}:{self.port}/graphql"

    def start(self, timeout: float = 10.0) -> str:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="realtime", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("real-time endpoint did not start")
        return self.url

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def publish(self, mutation: str, payload: dict[str, Any]) -> None:
        """Fire the subscriptions of ``mutation`` (thread-safe: the bus delivery runs in a pump thread)."""
        if self.loop is not None and self.hub is not None:
            self.loop.call_soon_threadsafe(self.hub.publish, mutation, payload)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.hub = Hub(self.mutations)
        self._stop = asyncio.Event()
        async with serve(self._connection, self.host, self.port, subprotocols=[SUBPROTOCOL], ssl=self.tls,
                         ping_interval=None) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    # -- one connection ----------------------------------------------------------------
    async def _connection(self, ws: ServerConnection) -> None:
        offered = [p.strip() for p in ws.request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        header = connection_header(ws.request.path, offered)
        tasks: dict[str, asyncio.Task] = {}
        keepalive: asyncio.Task | None = None
        try:
            async for raw in ws:
                message = _load(raw)
                kind = message.get("type") if message else None
                if kind == "connection_init" and keepalive is None:
                    if not await self._authorized(_token(header)):
                        await _send(ws, {"type": "connection_error", "payload": {"errors": [
                            dict(_error("UnauthorizedException", "You are not authorized to make this call."),
                                 errorCode=401)]}})
                        await ws.close(4401, "unauthorized")
                        return
                    await _send(ws, {"type": "connection_ack",
                                     "payload": {"connectionTimeoutMs": CONNECTION_TIMEOUT_MS}})
                    keepalive = asyncio.create_task(self._keepalive(ws))
                elif kind == "start" and keepalive is not None:
                    await self._start(ws, message, tasks)
                elif kind == "stop" and keepalive is not None:
                    task = tasks.pop(str(message.get("id")), None)
                    if task is not None:
                        task.cancel()
                    await _send(ws, {"type": "complete", "id": message.get("id")})
                else:
                    await _send(ws, {"type": "error", "payload": {"errors": [_error(
                        "UnsupportedOperation", f"{kind or 'message'} not supported "
                        + ("before connection_init" if keepalive is None else "through the realtime channel"))]}})
        except ConnectionClosed:
            pass  # a dropped client: its subscriptions go below, nobody else notices
        finally:
            for task in [*tasks.values(), *([keepalive] if keepalive else [])]:
                task.cancel()

    async def _keepalive(self, ws: ServerConnection) -> None:
        try:
            while True:
                await _send(ws, {"type": "ka"})
                await asyncio.sleep(self.keepalive_seconds)
        except ConnectionClosed:
            return

    async def _authorized(self, token: str | None, query: str = "", variables: dict | None = None):
        if not token:
            return None
        identity, denied = await asyncio.to_thread(self.gateway.lambda_identity, token, query, variables or {}, None)
        return None if identity is None else (identity, denied)

    async def _start(self, ws: ServerConnection, message: dict[str, Any], tasks: dict[str, asyncio.Task]) -> None:
        sub_id = str(message.get("id") or "")
        try:
            if not sub_id or sub_id in tasks:
                raise _Refused("DuplicatedOperationError" if sub_id else "BadRequest",
                               "each start needs an id not already in use on this connection")
            stream = await self._subscribe(message.get("payload") or {})
        except _Refused as refused:
            await _send(ws, {"type": "error", "id": sub_id or None, "payload": {"errors": [refused.payload]}})
            return
        tasks[sub_id] = asyncio.create_task(self._forward(ws, sub_id, stream))
        await _send(ws, {"type": "start_ack", "id": sub_id})

    async def _subscribe(self, payload: dict[str, Any]):
        try:
            request = json.loads(payload.get("data") or "")
            query, variables = request["query"], request.get("variables") or {}
            document = parse(query)
        except (ValueError, KeyError, TypeError, GraphQLError) as exc:
            raise _Refused("MalformedHttpRequestException", f"payload.data must hold a query: {exc}") from None
        problems = validate(self.gateway.schema, document)
        if problems:
            raise _Refused("ValidationError", "; ".join(p.message for p in problems))
        operation = get_operation_ast(document, request.get("operationName"))
        if operation is None or operation.operation != OperationType.SUBSCRIPTION:
            raise _Refused("UnsupportedOperation", "only subscriptions are served on the realtime channel")
        auth = (payload.get("extensions") or {}).get("authorization") or {}
        verdict = await self._authorized(_token(auth), query, variables)
        if verdict is None:
            raise _Refused("UnauthorizedException", "You are not authorized to make this call.")
        identity, denied = verdict
        result = subscribe(self.gateway.schema, document, variable_values=variables,
                           operation_name=request.get("operationName"),
                           subscribe_field_resolver=self._source(identity, denied))
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, ExecutionResult):
            raise _Refused(*_first_error(result))
        return result

    def _source(self, identity: dict[str, Any], denied: set[str]):
        """The subscription field's resolver: guard template first, then a stream from the hub."""

        def source(_root: Any, info: Any, **args: Any):
            path = f"Subscription.{info.field_name}"
            if path in denied:
                raise Unauthorized(f"Not Authorized to access {info.field_name} on type Subscription")
            template = GUARD_TEMPLATES.get(path)
            if template is not None:
                try:
                    render_request(template, args, identity)
                except Unauthorized:
                    raise Unauthorized(f"Not Authorized to access {info.field_name} on type Subscription") from None
            assert self.hub is not None
            return self.hub.stream(info.field_name, args)

        return source

    async def _forward(self, ws: ServerConnection, sub_id: str, stream: Any) -> None:
        try:
            async for result in stream:
                payload: dict[str, Any] = {"data": result.data}
                if result.errors:
                    payload["errors"] = [_error("ResolverError", e.message) for e in result.errors]
                await _send(ws, {"type": "data", "id": sub_id, "payload": payload})
        except ConnectionClosed:
            pass
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()  # unregisters from the hub


def _first_error(result: ExecutionResult) -> tuple[str, str]:
    error = (result.errors or [GraphQLError("subscription failed")])[0]
    if isinstance(error.original_error, Unauthorized):
        return "Unauthorized", error.message
    return "ValidationError", error.message


def _load(raw: str | bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


async def _send(ws: ServerConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message, separators=(",", ":")))
