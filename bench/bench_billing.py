"""Billing throughput: SESSION_ENDED records billed per second through the real billing handler, and
store round trips per delivery (a count from a pymongo ``CommandListener``, not a time).

Run: ``.venv/bin/python -m bench.bench_billing [--events N] [--batch 10] [--runs 2]``. Starts its own
embedded MongoDB (``devstack.embedded_mongo.EmbeddedMongo``, memory backend) in a temp dir, opens
one wallet per 4 sessions, feeds the records through ``chalicelib.billing.entry.bill_records`` (what
the ``billing_consumer`` Lambda runs: the batch's sessions billed in one pass, then
``chalicelib.events.consumer.run_batch`` reporting each record) in Lambda-sized batches, with
``RecordingPublisher`` instead of EventBridge, then redelivers every record once. After a warm-up
run (the store is a JVM), ``--runs`` runs on fresh databases; the median is reported beside all of
them (the machine is shared), and a run in batches of one beside. Prints one JSON object.
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
from typing import Any

from pymongo import MongoClient, monitoring

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chalicelib.billing import entry, service  # noqa: E402
from chalicelib.billing.repository import INDEXES, BillingRepository  # noqa: E402
from chalicelib.contracts.events import USER_REGISTERED, parse_event  # noqa: E402
from chalicelib.events.publisher import RecordingPublisher  # noqa: E402
from chalicelib.observability.logs import logger  # noqa: E402
from chalicelib.sections import load_stage_settings  # noqa: E402
from chalicelib.store import ensure_indexes  # noqa: E402
from devstack.embedded_mongo import EmbeddedMongo  # noqa: E402

# The design this replaced (leases, unique-insert claims, a window of applied ids on FerretDB 1.24),
# as measured by this bench and kept in the Performance table of docs/performance.md.
BEFORE = {"billed_per_second": 68.4, "store_round_trips_per_event": 21.0}
TARGET = {"max_round_trips_per_first_delivery": 6, "min_billed_per_second": 5 * BEFORE["billed_per_second"]}
NOT_ROUND_TRIPS = {"endSessions", "hello", "isMaster", "ismaster"}


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
        return sum(v for k, v in self.counts.items() if k not in NOT_ROUND_TRIPS)


class NoSqs:
    """Every record succeeds in the bench; a call here would mean a failure path ran."""

    def __getattr__(self, name):
        raise AssertionError(f"unexpected SQS call {name}")


def records(bodies: list[str], receive_count: int) -> list[dict]:
    return [{"messageId": str(uuid.uuid4()), "receiptHandle": "r", "body": body,
             "attributes": {"ApproximateReceiveCount": str(receive_count)}, "messageAttributes": {},
             "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:eu-central-1:1:jucr-bench-billing"}
            for body in bodies]


def session_bodies(users: list[str], events: int) -> list[str]:
    # Ended a minute ago: billing runs on the real clock and refuses sessions older than SESSION_MAX_AGE_DAYS.
    ended = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [json.dumps({"id": str(uuid.uuid4()), "detail-type": "SESSION_ENDED", "source": "jucr.session",
                        "time": "2026-02-21T14:31:01Z",
                        "detail": {"sessionId": str(uuid.uuid4()), "userId": users[i % len(users)],
                                   "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f", "energyKwh": 22.4,
                                   "durationMinutes": 58, "endedAt": ended}})
            for i in range(events)]


def run_once(uri: str, database: str, events: int, batch: int) -> dict[str, Any]:
    """Bill ``events`` new sessions, then deliver each again; counts and rates of both passes."""
    settings = load_stage_settings({"JUCR_STAGE": "test", "WALLET_OPENING_BALANCE": "10000"})
    counter = CommandCounter()
    client = MongoClient(uri, tz_aware=True, event_listeners=[counter])
    db = client[database]
    ensure_indexes(db, INDEXES)
    publisher = RecordingPublisher()
    deps = service.BillingDeps(repo=BillingRepository(db), publisher=publisher,
                               clock=lambda: dt.datetime.now(dt.UTC),
                               policy=service.BillingPolicy.from_settings(settings.billing))
    users = [str(uuid.uuid4()) for _ in range(max(1, events // 4))]
    for user in users:
        service.open_wallet(deps, parse_event(USER_REGISTERED, {"userId": user,
                                                                "registeredAt": "2026-02-20T10:00:00Z"}))
    bodies = session_bodies(users, events)

    def feed(receive_count: int) -> tuple[float, int, int, dict[str, int]]:
        counter.counts.clear()
        failures = 0
        started = time.perf_counter()
        for start in range(0, events, batch):
            event = {"Records": records(bodies[start:start + batch], receive_count)}
            failures += len(entry.bill_records(event, None, deps, max_receives=settings.queue.max_receive_count,
                                               redrive_limit=settings.queue.redrive_limit, core=settings.core,
                                               queue=settings.queue, sqs=NoSqs(),
                                               clock=lambda: dt.datetime.now(dt.UTC))["batchItemFailures"])
        return time.perf_counter() - started, counter.total(), failures, dict(counter.counts)

    first_seconds, first_trips, first_failures, by_command = feed(1)
    again_seconds, again_trips, again_failures, _ = feed(2)
    invoices = db.invoices.count_documents({})
    pending = sum(len(w.get("pending") or []) for w in db.wallets.find({}, {"pending": 1}))
    client.drop_database(database)
    client.close()
    return {
        "billed_per_second": round(events / first_seconds, 1),
        "store_round_trips_per_event": round(first_trips / events, 2),
        "round_trips_by_command": by_command,
        "redelivered_per_second": round(events / again_seconds, 1),
        "store_round_trips_per_redelivery": round(again_trips / events, 2),
        "failures": first_failures + again_failures,
        "invoices": invoices,
        "events_published": len(publisher.published),
        "markers_left_on_wallets": pending,
    }


def run(events: int, batch: int = 10, runs: int = 5) -> dict[str, Any]:
    """A warm-up run, then ``runs`` measured runs, each on a fresh database; the median is the headline.

    The warm-up is there because the store is a JVM: in its first seconds it runs
    interpreted code, and a cold first run measures that (its rate is printed too).
    """
    with tempfile.TemporaryDirectory() as tmp:
        mongo = EmbeddedMongo(Path(tmp)).start()
        try:
            cold = run_once(mongo.uri, "bench_warmup", max(events, 1000), batch)
            all_runs = [run_once(mongo.uri, f"bench{i}", events, batch) for i in range(runs)]
            single = run_once(mongo.uri, "bench_single", max(20, events // 10), 1)
        finally:
            mongo.stop()
    median = sorted(all_runs, key=lambda r: r["billed_per_second"])[len(all_runs) // 2]
    return {
        "events": events,
        "batch": batch,
        **median,
        "runs_billed_per_second": [r["billed_per_second"] for r in all_runs],
        "runs_redelivered_per_second": [r["redelivered_per_second"] for r in all_runs],
        "cold_store_billed_per_second": cold["billed_per_second"],
        "batch_of_one": {k: single[k] for k in ("billed_per_second", "store_round_trips_per_event",
                                                "store_round_trips_per_redelivery", "failures")},
        "before": BEFORE,
        "target": TARGET,
        "targets_met": (median["store_round_trips_per_event"] <= TARGET["max_round_trips_per_first_delivery"]
                        and median["billed_per_second"] >= TARGET["min_billed_per_second"]
                        and all(r["failures"] == 0 and r["invoices"] == events for r in all_runs)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--batch", type=int, default=10, help="records per Lambda invocation (SQS batch size)")
    parser.add_argument("--runs", type=int, default=5,
                        help="measured runs after a warm-up, each on a fresh database; the median is reported")
    args = parser.parse_args()
    logger.setLevel("WARNING")
    with contextlib.redirect_stdout(io.StringIO()):  # EMF metric lines; keep stdout to the one JSON result
        result = run(args.events, args.batch, args.runs)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
