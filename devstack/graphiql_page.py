"""GraphiQL for the local stage, served from the pinned npm packages that make vendors into .local.

Nothing loads from a CDN, so the page works offline. A token field feeds the
``Authorization`` header (and is filled by a ``login``/``register`` answer);
subscriptions go over the local AppSync real-time endpoint in AppSync's own
protocol, the same one aws-amplify speaks (auth in a ``header-`` subprotocol).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

VENDOR_DIR = Path(__file__).resolve().parents[1] / ".local" / "graphiql" / "node_modules"
# URL name -> file under the vendored node_modules (a fixed list: no path from the request reaches the disk).
ASSETS = {
    "graphiql.min.js": "graphiql/graphiql.min.js",
    "graphiql.min.css": "graphiql/graphiql.min.css",
    "react.production.min.js": "react/umd/react.production.min.js",
    "react-dom.production.min.js": "react-dom/umd/react-dom.production.min.js",
}
CONTENT_TYPES = {".js": "application/javascript", ".css": "text/css"}

MISSING = """<!doctype html><html><head><title>JUCR GraphQL (local)</title></head>
<body style="font-family:sans-serif;padding:1em"><p>GraphiQL is not installed: run <code>make graphiql</code>
(it vendors the pinned npm packages into .local/graphiql). Meanwhile POST your query to this URL, e.g.<br>
<code>curl -s -XPOST -H 'content-type: application/json' -d '{"query":"{ __typename }"}' URL</code></p></body></html>"""

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>JUCR GraphQL (local)</title>
<link rel="stylesheet" href="/graphiql/graphiql.min.css"/>
<style>body{margin:0;font-family:sans-serif}#bar{display:flex;gap:.5em;align-items:center;padding:.4em .8em;
background:#f3f4f6;border-bottom:1px solid #ddd;font-size:13px}#token{flex:1;font-family:monospace}
#graphiql{height:calc(100vh - 2.6em)}</style></head>
<body><div id="bar"><label for="token">Access token</label>
<input id="token" placeholder="run login (or register): its accessToken lands here" autocomplete="off"/>
<span id="rt"></span></div><div id="graphiql"></div>
<script src="/graphiql/react.production.min.js"></script>
<script src="/graphiql/react-dom.production.min.js"></script>
<script src="/graphiql/graphiql.min.js"></script>
<script>
const REALTIME = __REALTIME__;
const field = document.getElementById('token');
field.value = localStorage.getItem('jucr.token') || '';
field.addEventListener('input', () => localStorage.setItem('jucr.token', field.value.trim()));
document.getElementById('rt').textContent = 'subscriptions: ' + (REALTIME || 'no real-time endpoint');
const b64url = (o) => btoa(JSON.stringify(o)).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
function isSubscription(params) {
  const ops = [...params.query.matchAll(/(query|mutation|subscription)\\s*([_A-Za-z][_0-9A-Za-z]*)?/g)];
  const op = ops.find((m) => !params.operationName || m[2] === params.operationName) || ops[0];
  return !!op && op[1] === 'subscription';
}
function remember(result) {
  const data = (result && result.data) || {};
  const auth = data.login || data.register || data.refreshToken;
  if (auth && auth.accessToken) {
    field.value = auth.accessToken; localStorage.setItem('jucr.token', auth.accessToken);
  }
  return result;
}
function subscribe(params) {  // AppSync's real-time protocol, as an Observable GraphiQL understands
  return { subscribe(observer) {
    const auth = { host: location.host, Authorization: field.value.trim() };
    const ws = new WebSocket(REALTIME, ['graphql-ws', 'header-' + b64url(auth)]);
    const send = (m) => ws.send(JSON.stringify(m));
    ws.onopen = () => send({ type: 'connection_init' });
    ws.onerror = () => observer.error(new Error('real-time endpoint unreachable: ' + REALTIME));
    ws.onmessage = (event) => {
      const m = JSON.parse(event.data);
      if (m.type === 'connection_ack') {
        send({ id: '1', type: 'start', payload: { extensions: { authorization: auth }, data: JSON.stringify(
          { query: params.query, variables: params.variables || {}, operationName: params.operationName }) } });
      } else if (m.type === 'data') { observer.next(m.payload);
      } else if (m.type === 'error' || m.type === 'connection_error') {
        observer.next({ errors: (m.payload && m.payload.errors) || [m] }); observer.complete(); ws.close();
      } else if (m.type === 'complete') { observer.complete(); ws.close(); }
    };
    return { unsubscribe() { if (ws.readyState === 1) send({ type: 'stop', id: '1' }); ws.close(); } };
  } };
}
function fetcher(params) {
  if (isSubscription(params)) return subscribe(params);
  const token = field.value.trim();
  return fetch('/graphql', { method: 'POST', body: JSON.stringify(params), headers: Object.assign(
    { 'Content-Type': 'application/json' }, token ? { Authorization: token } : {}) })
    .then((r) => r.json()).then(remember);
}
ReactDOM.createRoot(document.getElementById('graphiql')).render(React.createElement(GraphiQL, { fetcher }));
</script></body></html>"""


def page() -> str:
    """The page, or how to install it; the real-time URL comes from the supervisor's environment."""
    if not (VENDOR_DIR / ASSETS["graphiql.min.js"]).is_file():
        return MISSING
    return PAGE.replace("__REALTIME__", json.dumps(os.environ.get("LOCAL_REALTIME_URL", "")))


def asset(name: str) -> tuple[bytes, str] | None:
    """A vendored file by its URL name, with its content type; None when unknown or not installed."""
    relative = ASSETS.get(name)
    path = VENDOR_DIR / relative if relative else None
    if path is None or not path.is_file():
        return None
    return path.read_bytes(), CONTENT_TYPES[path.suffix]
