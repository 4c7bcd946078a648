"""Put-on-bus to subscription-delivered latency on the local stack.

Starts its own local stack (``devstack/stack_process.py``, the recipe the tests and
the chaos run share: free ports, a real-time port of its own), registers one user,
subscribes to ``onInvoiceGenerated`` and ``onPaymentCompleted`` over the AppSync real-time protocol, then puts
``--sessions`` SESSION_ENDED events on the bus door one at a time and times
each from the put to the delivery of its invoice and of its payment. The
path measured is the whole choreography: bus rule -> billing queue -> pump ->
billing consumer -> INVOICE_GENERATED / PAYMENT_COMPLETED on the bus -> the
deploy step's AppSync rules -> publish mutation (IAM) -> subscriber.

Prints one JSON object: ``sessions``, ``delivered`` (payments received),
``p50_ms``/``p95_ms``/``p99_ms``/``max_ms`` (put -> payment delivered) and
``invoice_p50_ms``/``invoice_p95_ms``/``invoice_p99_ms`` (put -> invoice delivered).

Run: ``.venv/bin/python -m bench.bench_realtime [--sessions 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import connect  # noqa: E402

from devstack.stack_client import StackClient  # noqa: E402
from devstack.stack_process import start_stack  # noqa: E402

REGISTER = "mutation R($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }"
SUBSCRIPTIONS = {
    "invoice": "subscription I($u: ID!) { onInvoiceGenerated(userId: $u) { sessionId invoiceId total } }",
    "payment": "subscription P($u: ID!) { onPaymentCompleted(userId: $u) { sessionId invoiceId amount } }",
}
# Small sessions, so 200 of them stay within the demo wallet's opening balance.
ENERGY_KWH = 0.1


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _header(token: str) -> str:
    raw = json.dumps({"host": "127.0.0.1", "Authorization": token}).encode()
    return "header-" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def measure(stack: StackClient, realtime_url: str, sessions: int, timeout: float) -> dict[str, list[float]]:
    status, body = stack.graphql(REGISTER, {"input": {
        "email": f"bench.{uuid.uuid4().hex[:8]}@example.com", "name": "Ben Bench", "password": "correct horse battery",
        "vehicle": {"brand": "Kia", "model": "EV6", "batteryCapacity": 77.4}}})
    token, user_id = body["data"]["register"]["accessToken"], body["data"]["register"]["user"]["id"]
    for _ in range(120):  # the wallet is opened by choreography
        status, body = stack.graphql("{ wallet { balance } }", token=token)
        if status == 200 and ((body or {}).get("data") or {}).get("wallet"):
            break
        await asyncio.sleep(0.25)
    latencies: dict[str, list[float]] = {"invoice": [], "payment": []}
    async with connect(realtime_url, subprotocols=["graphql-ws", _header(token)]) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        for kind, query in SUBSCRIPTIONS.items():
            await ws.send(json.dumps({"id": kind, "type": "start", "payload": {
                "data": json.dumps({"query": query, "variables": {"u": user_id}}),
                "extensions": {"authorization": {"host": "127.0.0.1", "Authorization": token}}}}))
        acks = 0
        while acks < 2:
            acks += json.loads(await ws.recv())["type"] == "start_ack"
        for _ in range(sessions):
            session_id = str(uuid.uuid4())
            event = {"eventType": "SESSION_ENDED", "sessionId": session_id, "userId": user_id,
                     "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f", "energyKwh": ENERGY_KWH,
                     "durationMinutes": 5, "endedAt": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
            started = time.perf_counter()
            status, _ = await asyncio.to_thread(stack.put_event, event)
            assert status == 202, status
            pending = {"invoice", "payment"}
            deadline = started + timeout
            while pending and time.perf_counter() < deadline:
                try:
                    raw = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.perf_counter()))
                except TimeoutError:
                    break
                message = json.loads(raw)
                if message["type"] != "data" or message["id"] not in pending:
                    continue
                item = next(iter(message["payload"]["data"].values()))
                if item["sessionId"] == session_id:
                    latencies[message["id"]].append((time.perf_counter() - started) * 1000)
                    pending.discard(message["id"])
    return latencies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_realtime", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for one session's delivery")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-realtime-") as data_dir:
        stack = start_stack(Path(data_dir), {"LOCAL_OCM_SYNC_INTERVAL": "off"})  # no sync competing with billing
        try:
            latencies = asyncio.run(measure(StackClient.of(stack), stack.realtime_url, args.sessions, args.timeout))
        finally:
            stack.stop()
    payment, invoice = sorted(latencies["payment"]), sorted(latencies["invoice"])
    result = {"bench": "realtime", "sessions": args.sessions, "delivered": len(payment),
              "p50_ms": round(percentile(payment, 50), 1), "p95_ms": round(percentile(payment, 95), 1),
              "p99_ms": round(percentile(payment, 99), 1), "max_ms": round(payment[-1], 1) if payment else None,
              "invoice_p50_ms": round(percentile(invoice, 50), 1), "invoice_p95_ms": round(percentile(invoice, 95), 1),
              "invoice_p99_ms": round(percentile(invoice, 99), 1)}
    print(json.dumps(result))
    return 0 if len(payment) == args.sessions else 1


if __name__ == "__main__":
    raise SystemExit(main())
