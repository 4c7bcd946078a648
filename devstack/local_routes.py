"""Routes that exist only in the ``local`` stage (app.py registers them there; never packaged).

``POST /graphql`` is the AppSync stand-in; ``POST /local/events`` is the door to
the local bus the Session Service would use. Like EventBridge, the door refuses
only what is not an event object: payload validation is the consumers' job.
"""

from __future__ import annotations

import json

from chalice import Blueprint, Response

local_routes = Blueprint(__name__)

GRAPHIQL_PAGE = """<!doctype html>
<html><head><title>JUCR GraphQL (local)</title>
<link rel="stylesheet" href="https://unpkg.com/graphiql/graphiql.min.css"/></head>
<body style="margin:0"><div id="graphiql" style="height:100vh">
<p style="font-family:sans-serif;padding:1em">GraphiQL loads its script from unpkg.com; offline, POST
your query to this URL instead, e.g.<br><code>curl -s -XPOST -H 'content-type: application/json'
-d '{"query":"{ __typename }"}' http://127.0.0.1:8000/graphql</code></p></div>
<script crossorigin src="https://unpkg.com/react/umd/react.production.min.js"></script>
<script crossorigin src="https://unpkg.com/react-dom/umd/react-dom.production.min.js"></script>
<script crossorigin src="https://unpkg.com/graphiql/graphiql.min.js"></script>
<script>
if (window.GraphiQL) {
  const fetcher = GraphiQL.createFetcher({url: '/graphql',
    headers: localStorage.token ? {Authorization: localStorage.token} : {}});
  ReactDOM.render(React.createElement(GraphiQL, {fetcher}), document.getElementById('graphiql'));
}
</script></body></html>"""


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
    return Response(body=GRAPHIQL_PAGE, status_code=200, headers={"Content-Type": "text/html"})


@local_routes.route("/graphql", methods=["POST"], content_types=["application/json"])
def graphql():
    from devstack.gateway import Gateway, in_process_invoker

    try:
        body = _body()
    except ValueError as exc:
        return _json(400, {"errors": [{"message": str(exc), "errorType": "BadRequest"}]})
    headers = local_routes.current_request.headers
    gateway = Gateway(in_process_invoker(local_routes.current_app))
    status, result = gateway.handle(body, headers.get("authorization"))
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
