"""Routes that exist only in the ``local`` stage (app.py registers them there; never packaged).

``POST /graphql`` is the AppSync stand-in (``GET`` is GraphiQL, from ``/graphiql/*``), told the
caller's address as AppSync would be;
``POST /local/events`` is the door to the local bus the Session Service would use. Like EventBridge, the door refuses
only what is not an event object: payload validation is the consumers' job.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from chalice import Blueprint, Response

local_routes = Blueprint(__name__)

def _json(status: int, body: dict) -> Response:
    return Response(body=json.dumps(body), status_code=status, headers={"Content-Type": "application/json"})


def _body():
    raw = local_routes.current_request.raw_body or b""
    try:
        return json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("body is not valid JSON") from None


@local_routes.route("/graphql", methods=["GET"])
def graphiql():
    from devstack.graphiql_page import page

    return Response(body=page(), status_code=200, headers={"Content-Type": "text/html"})


@local_routes.route("/graphiql/{name}", methods=["GET"])
def graphiql_asset(name):
    from devstack.graphiql_page import asset

    found = asset(name)
    if found is None:
        return Response(body="not found", status_code=404, headers={"Content-Type": "text/plain"})
    body, content_type = found
    return Response(body=body, status_code=200, headers={"Content-Type": content_type})


@cache
def _gateway(app: Any) -> Any:
    """One gateway per app: schema, resolver map and invoker are built once, not on every request."""
    from devstack.gateway import Gateway, in_process_invoker
    from devstack.package_mode import package_invoker

    return Gateway(package_invoker(in_process_invoker(app)))


@local_routes.route("/graphql", methods=["POST"], content_types=["application/json"])
def graphql():

    try:
        body = _body()
    except ValueError as exc:
        return _json(400, {"errors": [{"message": str(exc), "errorType": "BadRequest"}]})
    request = local_routes.current_request
    # The TCP peer (devstack/chalice_server.py puts it in sourceIp, as API Gateway would) and the
    # client's own X-Forwarded-For: the gateway orders them as AppSync does, so the peer is the source.
    peer = (request.context.get("identity") or {}).get("sourceIp")
    status, result = _gateway(local_routes.current_app).handle(
        body, request.headers.get("authorization"), source_ip=peer,
        forwarded_for=request.headers.get("x-forwarded-for"))
    return _json(status, result)


@local_routes.route("/local/events", methods=["POST"], content_types=["application/json"])
def put_event():
    from devstack.bus_door import put_raw_event

    try:
        body = _body()
    except ValueError as exc:
        return _json(400, {"error": str(exc)})
    status, result = put_raw_event(body)
    return _json(status, result)


__all__ = ["local_routes"]
