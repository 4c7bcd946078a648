"""Billing throughput: SESSION_ENDED records billed per second through the SQS batch runner, and
store round trips per event (a count from a pymongo ``CommandListener``, not a time).

Run: ``.venv/bin/python -m bench.bench_billing [--events N]``. Starts its own embedded
FerretDB in a temp dir, opens one wallet per 4 sessions, feeds the records through
``chalicelib.events.consumer.run_batch`` in Lambda-sized batches of 10 with the real
billing handler (``RecordingPublisher`` instead of EventBridge), then redelivers every
record once. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from pymongo import MongoClient, monitoring

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chalicelib.billing import service  # noqa: E402
from chalicelib.billing.repository import INDEXES, BillingRepository  # noqa: E402
from chalicelib.config import load_settings  # noqa: E402
from chalicelib.contracts.events import USER_REGISTERED, parse_event  # noqa: E402
from chalicelib.events.consumer import Delivery, run_batch  # noqa: E402
from chalicelib.events.publisher import RecordingPublisher  # noqa: E402
from chalicelib.observability.logs import logger  # noqa: E402
from chalicelib.store import ensure_indexes  # noqa: E402
from devstack.embedded_mongo import EmbeddedMongo  # noqa: E402


class CommandCounter(monitoring.CommandListener):
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.counts[event.command_name] += 1

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass

    def total(self) -> int:
        return sum(v for k, v in self.counts.items() if k not in {"endSessions", "hello", "isMaster", "ismaster"})


class NoSqs:
    """Every record succeeds in the bench; a call here would mean a failure path ran."""

    def __getattr__(self, name):
        raise AssertionError(f"unexpected SQS call {name}")


def records(bodies: list[str], receive_count: int) -> list[dict]:
    return [{"messageId": str(uuid.uuid4()), "receiptHandle": "r", "body": body,
             "attributes": {"ApproximateReceiveCount": str(receive_count)}, "messageAttributes": {},
             "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:eu-central-1:1:jucr-bench-billing"}
            for body in bodies]


def run(events: int) -> dict:
    settings = load_settings({"JUCR_STAGE": "test", "WALLET_OPENING_BALANCE": "10000"})
    with tempfile.TemporaryDirectory() as tmp:
        mongo = EmbeddedMongo(Path(tmp)).start()
        try:
            counter = CommandCounter()
            client = MongoClient(mongo.uri, tz_aware=True, event_listeners=[counter])
            db = client["bench"]
            ensure_indexes(db, INDEXES)
            publisher = RecordingPublisher()
            deps = service.BillingDeps(repo=BillingRepository(db), publisher=publisher,
                                       clock=lambda: dt.datetime.now(dt.UTC),
                                       policy=service.BillingPolicy.from_settings(settings))
            users = [str(uuid.uuid4()) for _ in range(max(1, events // 4))]
            for user in users:
                service.open_wallet(deps, parse_event(USER_REGISTERED, {"userId": user,
                                                                        "registeredAt": "2026-02-20T10:00:00Z"}))
            bodies = [json.dumps({"id": str(uuid.uuid4()), "detail-type": "SESSION_ENDED",
                                  "time": "2026-02-21T14:31:01Z",
                                  "detail": {"sessionId": str(uuid.uuid4()), "userId": users[i % len(users)],
                                             "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f",
                                             "energyKwh": 22.4, "durationMinutes": 58,
                                             "endedAt": "2026-02-21T14:31:00Z"}})
                      for i in range(events)]

            def bill(delivery: Delivery) -> None:
                service.bill_session(deps, delivery.event("SESSION_ENDED"), correlation_id=delivery.correlation_id)

            def feed(receive_count: int) -> tuple[float, int, int]:
                before = counter.total()
                failures = 0
                started = time.perf_counter()
                for start in range(0, events, 10):
                    event = {"Records": records(bodies[start:start + 10], receive_count)}
                    failures += len(run_batch(event, None, bill, source_queue="billing", settings=settings,
                                              sqs=NoSqs(), clock=lambda: dt.datetime.now(dt.UTC))["batchItemFailures"])
                return time.perf_counter() - started, counter.total() - before, failures

            counter.counts.clear()
            first_seconds, first_trips, first_failures = feed(1)
            by_command = dict(counter.counts)
            again_seconds, again_trips, again_failures = feed(2)
            client.close()
            invoices = MongoClient(mongo.uri)["bench"].invoices.count_documents({})
        finally:
            mongo.stop()
    return {
        "events": events,
        "billed_per_second": round(events / first_seconds, 1),
        "store_round_trips_per_event": round(first_trips / events, 2),
        "round_trips_by_command": by_command,
        "redelivered_per_second": round(events / again_seconds, 1),
        "store_round_trips_per_redelivery": round(again_trips / events, 2),
        "failures": first_failures + again_failures,
        "invoices": invoices,
        "events_published": len(publisher.published),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    logger.setLevel("WARNING")
    with contextlib.redirect_stdout(io.StringIO()):  # EMF metric lines; keep stdout to the one JSON result
        result = run(args.events)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
