"""Chaos run: at-least-once delivery, exactly-once effect, nothing lost, under faults, on the local stack.

Run: ``make chaos`` or ``.venv/bin/python -m bench.chaos [--users 200] [--events 10000]
[--duplicate-share 0.3] [--poison-share 0.02] [--crash-rate 0.01] [--outage-seconds 8] [--rate 25]
[--max-backlog 100] [--seed 7]``. The defaults are a 10,000-delivery run; see docs/performance.md "Proof under load
and faults" for the latest numbers and how long it takes. Puts are capped at ``--rate`` and held
while moto's billing queue holds more than ``--max-backlog`` messages (see ``put_all``).

What it does, in order:

1. starts its own local stack (``python -m devstack`` on free ports, own data dir, as the
   ``local_stack`` test fixture does) with ``BILLING_CHAOS_CRASH_RATE`` set: after each billing
   step (``chalicelib.billing.sessions.STEPS``, run once per batch) the consumer raises
   ``ChaosCrash`` with that probability, and at the latest after ``2 / rate`` steps without one
   (``chalicelib/billing/entry.py``, honoured only in the local stage), so every session of the
   batch still in flight is resumed by a redelivery;
2. adds a capture rule + SQS queue on the bus (moto) that records every ``jucr.billing`` and
   ``jucr.dlq`` event, and drains it in a thread;
3. registers the users through ``POST /graphql`` ``register`` (wallets are then opened by the
   ``USER_REGISTERED`` -> wallets queue -> wallet opener choreography) and waits for the wallets;
4. puts the ``SESSION_ENDED`` events on the bus with ``PutEvents`` (what the Session Service does;
   batches of 10, source ``jucr.session``): ``events`` deliveries in all, a share of the distinct
   sessions delivered more than once, everything shuffled (out of order), a share of poison events
   (invalid payloads with valid ids);
5. mid-run takes the store away: the embedded MongoDB of the stack (found by its port in
   ``/proc``) is terminated, stays down ``--outage-seconds``, and is started again by this script
   with the same command line (same port, same H2 data file);
6. waits until every queue is empty and all outcomes are on the bus, then checks the invariants
   (see ``check_*``), prints counts, rates and latency percentiles, and exits 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devstack.embedded_mongo import MAIN_CLASS, free_port  # noqa: E402

REGISTER = "mutation R($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }"
CAPTURED_SOURCES = ["jucr.billing", "jucr.dlq"]
WATCHED_QUEUES = ("billing", "wallets", "billing-dlq", "wallets-dlq", "ocm-sync-dlq")
POISONS: tuple[tuple[str, Any], ...] = (
    ("energyKwh", -3), ("energyKwh", "lots"), ("durationMinutes", -5), ("endedAt", "yesterday"),
    ("stationId", None), ("durationMinutes", 1.5), ("energyKwh", 10_000_000),
)
STATIONS = [str(uuid.UUID(int=i + 1)) for i in range(50)]


def say(message: str) -> None:
    print(f"[chaos] {message}", flush=True)


@dataclass
class Options:
    users: int = 200
    events: int = 10_000
    duplicate_share: float = 0.3
    poison_share: float = 0.02
    crash_rate: float = 0.01
    outage_seconds: float = 8.0
    outage_at: float = 0.4
    rate: float = 25.0
    max_backlog: int = 100
    seed: int = 7
    opening_balance: str = "400.00"
    timeout: float = 1800.0
    data_dir: str | None = None


# --- the stack --------------------------------------------------------------------------------

@dataclass
class ChaosStack:
    """``python -m devstack`` as a subprocess on free ports (the ``local_stack`` fixture's recipe)."""

    data_dir: Path
    extra_env: dict[str, str]
    process: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)
    base_url: str = ""
    mongo_port: int = 0
    restarted_store: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "stack.log"

    def start(self, timeout: float = 120) -> ChaosStack:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ports = {name: free_port() for name in ("http", "moto", "mongo", "ocm")}
        self.mongo_port = ports["mongo"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MONGODB_", "OCM_", "JUCR_"))}
        env.update({"LOCAL_OCM_SYNC_INTERVAL": "off", "SQS_BACKOFF_BASE_SECONDS": "1", "PYTHONUNBUFFERED": "1",
                    "DLQ_REDRIVE_DELAY_SECONDS": "2", "LOCAL_REALTIME_PORT": str(free_port()), **self.extra_env})
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devstack", "--http-port", str(ports["http"]), "--moto-port", str(ports["moto"]),
             "--mongo-port", str(ports["mongo"]), "--ocm-port", str(ports["ocm"]), "--data-dir", str(self.data_dir)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while "ready. Ctrl-C" not in self.logs():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"local stack did not start:\n{self.logs()[-4000:]}")
            time.sleep(0.2)
        state = json.loads((self.data_dir / "devstack.json").read_text())
        self.env = dict(env, **state["env"])
        self.base_url = f"http://127.0.0.1:{ports['http']}"
        return self

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def graphql(self, query: str, variables: dict | None = None, token: str | None = None) -> tuple[int, Any]:
        return self._post("/graphql", {"query": query, "variables": variables or {}}, token)

    def put_event(self, event: dict) -> tuple[int, Any]:
        """An event through the bus door, as the Session Service would put it."""
        return self._post("/local/events", event)

    def _post(self, path: str, body: dict, token: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", **({"Authorization": token} if token else {})}
        request = urllib.request.Request(self.base_url + path, data=json.dumps(body).encode(), method="POST",  # noqa: S310
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def client(self, name: str):
        import boto3

        return boto3.client(name, endpoint_url=self.env["AWS_ENDPOINT_URL"], region_name=self.env["AWS_DEFAULT_REGION"],
                            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"])

    def database(self):
        from pymongo import MongoClient

        client = MongoClient(self.env["MONGODB_URI"], serverSelectionTimeoutMS=30000, tz_aware=True)
        return client[self.env["MONGODB_DB"]]

    def queue_url(self, short: str) -> str:
        name = f"{self.env['JUCR_APP_NAME']}-{self.env['JUCR_STAGE']}-{short}"
        return self.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]

    # -- the store fault -------------------------------------------------------------------
    def store_pid(self) -> tuple[int, list[str]]:
        """The embedded MongoDB of this stack: the launcher started on our mongo port (from /proc)."""
        wanted = str(self.mongo_port)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            args = [a.decode(errors="replace") for a in argv if a]
            if MAIN_CLASS in args and args[args.index(MAIN_CLASS) + 1:][:1] == [wanted]:
                return int(entry.name), args
        raise RuntimeError(f"no embedded MongoDB listens on port {wanted}")

    def take_store_down(self, seconds: float) -> dict[str, Any]:
        """Terminate the store, keep it down ``seconds``, start it again on the same port and data."""
        pid, argv = self.store_pid()
        started = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        while _port_open(self.mongo_port):
            if time.monotonic() - started > 10:
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        down_at = time.monotonic()
        time.sleep(seconds)
        log = open(self.data_dir / "mongo-java-server.log", "ab")
        # stdin is a pipe this process holds: the launcher stops when it closes (with us).
        self.restarted_store = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                                start_new_session=True)
        while not _port_open(self.mongo_port):
            if self.restarted_store.poll() is not None:
                raise RuntimeError("the embedded MongoDB did not restart; see mongo-java-server.log")
            time.sleep(0.05)
        return {"pid": pid, "newPid": self.restarted_store.pid, "downSeconds": round(time.monotonic() - down_at, 2)}

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.restarted_store is not None and self.restarted_store.poll() is None:
            self.restarted_store.terminate()
            try:
                self.restarted_store.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.restarted_store.kill()


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# --- capturing what billing and the reconciler publish ---------------------------------------------

class Capture(threading.Thread):
    """A bus rule -> SQS queue in moto for ``jucr.billing``/``jucr.dlq``; every message drained and kept."""

    def __init__(self, stack: ChaosStack) -> None:
        super().__init__(name="capture", daemon=True)
        self.sqs = stack.client("sqs")
        events = stack.client("events")
        name = f"{stack.env['JUCR_APP_NAME']}-{stack.env['JUCR_STAGE']}-chaos-capture"
        self.url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        bus = stack.env["EVENT_BUS_NAME"]
        events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps({"source": CAPTURED_SOURCES}))
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "capture", "Arn": arn}])
        self.records: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.drain_once()
            except Exception as exc:  # noqa: BLE001 - keep capturing; moto may hiccup
                say(f"capture error {type(exc).__name__}: {exc}")
                time.sleep(0.5)

    def drain_once(self) -> int:
        got = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        now = time.time()
        for message in got:
            body = json.loads(message["Body"])
            with self.lock:
                self.records.append({"type": body.get("detail-type"), "detail": body.get("detail") or {},
                                     "capturedAt": now})
        if got:
            self.sqs.delete_message_batch(QueueUrl=self.url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
        return len(got)

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.records)


# --- the workload ---------------------------------------------------------------------------------

def register_users(stack: ChaosStack, count: int, seed: int) -> list[str]:
    """Register through ``/graphql`` (4 concurrent clients); returns the user ids."""
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> str:
        status, body = stack.graphql(REGISTER, {"input": {
            "email": f"chaos.{seed}.{i}@example.com", "name": f"Chaos Driver {i}", "password": "correct horse battery",
            "vehicle": {"brand": "Kia", "model": "EV6", "batteryCapacity": 77.4}}})
        if status != 200 or not isinstance(body, dict) or body.get("errors"):
            raise RuntimeError(f"register failed: {status} {body}")
        return body["data"]["register"]["user"]["id"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, range(count)))


@dataclass
class Plan:
    deliveries: list[dict[str, Any]]  # in put order
    valid: set[str]
    poison: set[str]
    duplicated: set[str]


def make_plan(users: list[str], options: Options) -> Plan:
    """``events`` deliveries: distinct sessions, a share of them repeated, shuffled; some poison."""
    rng = random.Random(options.seed)
    distinct = max(1, round(options.events / (1 + options.duplicate_share)))
    sessions = []
    for _ in range(distinct):
        session = {"eventType": "SESSION_ENDED", "sessionId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                   "userId": rng.choice(users), "stationId": rng.choice(STATIONS),
                   "energyKwh": round(rng.uniform(1, 60), 3), "durationMinutes": rng.randint(5, 240),
                   "endedAt": f"2026-02-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z"}
        sessions.append(session)
    poison_count = round(distinct * options.poison_share)
    poison = set()
    for session in rng.sample(sessions, poison_count):
        key, value = rng.choice(POISONS)
        if value is None:
            del session[key]
        else:
            session[key] = value
        poison.add(session["sessionId"])
    deliveries = list(sessions)
    extra = options.events - distinct
    repeated = rng.sample(sessions, min(len(sessions), max(0, round(distinct * options.duplicate_share))))
    for i in range(extra if repeated else 0):
        deliveries.append(dict(repeated[i % len(repeated)]))
    rng.shuffle(deliveries)
    ids = {s["sessionId"] for s in sessions}
    return Plan(deliveries, ids - poison, poison, {s["sessionId"] for s in repeated[:extra]})


def put_all(stack: ChaosStack, plan: Plan, rate: float, max_backlog: int, on_progress,
            max_hold: float = 600.0) -> dict[str, float]:
    """PutEvents in batches of 10; returns the first put time per session.

    Paced twice: at most ``rate`` events/s (0 = no limit), and never while the
    billing queue holds more than ``max_backlog`` messages (0 = no limit).
    The backlog bound is for moto, not for the system under test: moto's
    ``ReceiveMessage`` walks the whole queue, so at 5,000 queued messages one
    receive takes ~5 s and the run measures moto instead of billing. SQS has
    no such cost, so holding puts back is what a producer there would not
    notice.
    """
    events = stack.client("events")
    sqs = stack.client("sqs")
    billing_url = stack.queue_url("billing")
    bus = stack.env["EVENT_BUS_NAME"]
    first_put: dict[str, float] = {}
    started = time.monotonic()
    for start in range(0, len(plan.deliveries), 10):
        batch = plan.deliveries[start:start + 10]
        if rate > 0:
            due = started + start / rate
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
        held_since = time.monotonic()
        while max_backlog and _visible(sqs, billing_url) > max_backlog:
            if time.monotonic() - held_since > max_hold:
                raise RuntimeError(f"the billing queue stayed above {max_backlog} messages for {max_hold:.0f} s: "
                                   "billing stopped draining (see stack.log in the data dir)")
            time.sleep(0.5)
        now = time.time()
        for delivery in batch:
            first_put.setdefault(delivery["sessionId"], now)
        # occurredAt = the first put of the session (a repeat is the same event): the consumer's
        # EventLatencyMs then measures put -> handling instead of the synthetic endedAt.
        entries = [{"Source": "jucr.session", "DetailType": "SESSION_ENDED", "EventBusName": bus,
                    "Detail": json.dumps({**d, "occurredAt": _iso(first_put[d["sessionId"]])})} for d in batch]
        for attempt in range(5):
            failed = events.put_events(Entries=entries).get("FailedEntryCount", 0)
            if not failed:
                break
            time.sleep(0.2 * (attempt + 1))
        else:
            raise RuntimeError("the bus kept refusing events")
        on_progress(start + len(batch))
    return first_put


def _visible(sqs, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


def _iso(epoch: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def queue_depths(stack: ChaosStack) -> dict[str, int]:
    sqs = stack.client("sqs")
    depths = {}
    for short in WATCHED_QUEUES:
        attrs = sqs.get_queue_attributes(QueueUrl=stack.queue_url(short), AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        depths[short] = sum(int(v) for v in attrs.values())
    return depths


def distinct_sessions(records: list[dict[str, Any]], event_type: str) -> set[str]:
    return {r["detail"].get("sessionId") for r in records if r["type"] == event_type}


def wait_until_settled(stack: ChaosStack, capture: Capture, plan: Plan, timeout: float) -> dict[str, int]:
    """Until every valid session has its INVOICE_GENERATED, every poison its BILLING_FAILED, all queues empty."""
    deadline = time.monotonic() + timeout
    quiet = 0
    depths: dict[str, int] = {}
    last_report = 0.0
    while time.monotonic() < deadline:
        records = capture.snapshot()
        billed = len(distinct_sessions(records, "INVOICE_GENERATED") & plan.valid)
        failed = len(distinct_sessions(records, "BILLING_FAILED") & plan.poison)
        depths = queue_depths(stack)
        done = billed >= len(plan.valid) and failed >= len(plan.poison) and not any(depths.values())
        quiet = quiet + 1 if done else 0
        if quiet >= 3:  # three calm looks in a row: nothing left in flight or delayed
            return depths
        if time.monotonic() - last_report > 15:
            say(f"waiting: billed {billed}/{len(plan.valid)}, BILLING_FAILED {failed}/{len(plan.poison)}, "
                f"queues {depths}")
            last_report = time.monotonic()
        time.sleep(1.0)
    return depths


# --- the checks -------------------------------------------------------------------------------------

@dataclass
class Report:
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append((name, bool(ok), detail))

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(ok for _, ok, _ in self.checks)


def check_invoices(db, plan: Plan, report: Report) -> list[dict[str, Any]]:
    invoices = list(db["invoices"].find({}, {"sessionId": 1, "userId": 1, "status": 1, "totalCents": 1,
                                              "payment": 1}))
    sessions = Counter(i["sessionId"] for i in invoices)
    doubles = [s for s, n in sessions.items() if n > 1]
    report.check("one invoice per distinct valid session",
                 set(sessions) == plan.valid and not doubles and len(invoices) == len(plan.valid),
                 f"invoices {len(invoices)}, distinct valid sessions {len(plan.valid)}, doubles {len(doubles)}, "
                 f"missing {len(plan.valid - set(sessions))}, for poison {len(set(sessions) & plan.poison)}")
    return invoices


def check_wallets(db, users: list[str], invoices: list[dict[str, Any]], opening_cents: int, report: Report) -> None:
    paid = defaultdict(int)
    paid_sessions: dict[str, set[str]] = defaultdict(set)
    unpaid_sessions: dict[str, set[str]] = defaultdict(set)
    for invoice in invoices:
        if invoice["status"] == "PAID":
            paid[invoice["userId"]] += invoice["totalCents"]
            paid_sessions[invoice["userId"]].add(invoice["sessionId"])
        else:
            unpaid_sessions[invoice["userId"]].add(invoice["sessionId"])
    wallets = {w["_id"]: w for w in db["wallets"].find({}, {"balanceCents": 1})}
    applied: dict[str, set[str]] = defaultdict(set)
    rejected: dict[str, set[str]] = defaultdict(set)
    pending = 0
    for entry in db["ledger"].find({"kind": "DEBIT"}, {"walletId": 1, "sessionId": 1, "status": 1}):
        if entry["status"] == "APPLIED":
            applied[entry["walletId"]].add(entry["sessionId"])
        elif entry["status"] == "REJECTED":
            rejected[entry["walletId"]].add(entry["sessionId"])
        else:
            pending += 1
    wrong_balance = [u for u in users if (wallets.get(u) or {}).get("balanceCents") != opening_cents - paid[u]]
    wrong_ledger = [u for u in users if applied[u] != paid_sessions[u] or rejected[u] != unpaid_sessions[u]]
    negative = [u for u in users if (wallets.get(u) or {}).get("balanceCents", 0) < 0]
    report.check("every wallet: balance = opening - sum(PAID invoices)",
                 not wrong_balance and len(wallets) >= len(users),
                 f"wallets {len(wallets)}, wrong balance {len(wrong_balance)}, below zero {len(negative)}")
    report.check("ledger: one APPLIED debit per PAID invoice, one REJECTED per unpaid, none PENDING",
                 not wrong_ledger and not pending,
                 f"applied {sum(map(len, applied.values()))}, rejected {sum(map(len, rejected.values()))}, "
                 f"pending {pending}, wallets off {len(wrong_ledger)}")


def check_poison(db, records: list[dict[str, Any]], plan: Plan, report: Report) -> None:
    failed = distinct_sessions(records, "BILLING_FAILED")
    audited = set()
    for record in db["dead_letters"].find({"action": "billing_failed"}, {"businessKey": 1, "status": 1}):
        if record.get("status") == "done":
            audited.add((record.get("businessKey") or {}).get("sessionId"))
    report.check("every poison event: BILLING_FAILED on the bus and a dead_letters audit record",
                 plan.poison <= failed and plan.poison <= audited,
                 f"poison sessions {len(plan.poison)}, with BILLING_FAILED {len(plan.poison & failed)}, "
                 f"audited {len(plan.poison & audited)}")
    report.check("no BILLING_FAILED for a valid session", not (failed & plan.valid),
                 f"valid sessions given up: {len(failed & plan.valid)}")


def check_bus(records: list[dict[str, Any]], invoices: list[dict[str, Any]], report: Report) -> None:
    ids: dict[str, set[str]] = defaultdict(set)
    raw = Counter()
    sessions: dict[str, set[str]] = defaultdict(set)
    for record in records:
        ids[record["type"]].add(record["detail"].get("eventId"))
        sessions[record["type"]].add(record["detail"].get("sessionId"))
        raw[record["type"]] += 1
    paid = {i["sessionId"] for i in invoices if i["status"] == "PAID"}
    unpaid = {i["sessionId"] for i in invoices if i["status"] != "PAID"}
    everything = paid | unpaid
    ok = (len(ids["INVOICE_GENERATED"]) == len(everything) and sessions["INVOICE_GENERATED"] == everything
          and len(ids["PAYMENT_COMPLETED"]) == len(paid) and sessions["PAYMENT_COMPLETED"] == paid
          and len(ids["PAYMENT_FAILED"]) == len(unpaid) and sessions["PAYMENT_FAILED"] == unpaid)
    report.check("bus: distinct INVOICE_GENERATED / PAYMENT_COMPLETED / PAYMENT_FAILED match the invoices", ok,
                 f"INVOICE_GENERATED {len(ids['INVOICE_GENERATED'])} (raw {raw['INVOICE_GENERATED']}) vs invoices "
                 f"{len(everything)}; PAYMENT_COMPLETED {len(ids['PAYMENT_COMPLETED'])} (raw "
                 f"{raw['PAYMENT_COMPLETED']}) vs PAID {len(paid)}; PAYMENT_FAILED {len(ids['PAYMENT_FAILED'])} (raw "
                 f"{raw['PAYMENT_FAILED']}) vs unpaid {len(unpaid)}")
    report.numbers["busEventsRaw"] = dict(raw)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def latencies(records: list[dict[str, Any]], first_put: dict[str, float]) -> list[float]:
    """Seconds from the session's first PutEvents to its PAYMENT_COMPLETED ``occurredAt`` (same host clock)."""
    import datetime as dt

    seen: dict[str, float] = {}
    for record in records:
        if record["type"] != "PAYMENT_COMPLETED":
            continue
        session = record["detail"].get("sessionId")
        at = dt.datetime.fromisoformat(record["detail"]["occurredAt"].replace("Z", "+00:00")).timestamp()
        if session in first_put:
            seen.setdefault(session, at - first_put[session])
    return list(seen.values())


def _json_lines(logs: str):
    for line in logs.splitlines():
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                continue


def fault_evidence(logs: str) -> dict[str, int]:
    """What the stack's own JSON logs say happened: injected crashes, store failures, retries, dead letters."""
    found = Counter()
    for doc in _json_lines(logs):
        reason = str(doc.get("failureReason") or "")
        message = doc.get("message")
        if message == "transient failure: will retry":
            found["retriedRecords"] += 1
            found["chaosCrashes"] += reason.startswith("chaos: crashed after")
            found["storeUnavailable"] += "store unavailable" in reason
        elif message == "permanent failure: sent to the dead-letter queue":
            found["deadLettered"] += 1
        elif message == "dead letter reconciled":
            found[f"reconciler:{doc.get('action')}"] += 1
    return dict(found)


def slo_metric_samples(logs: str) -> list[float]:
    """``EventLatencyMs`` values of the billing queue from the EMF lines the consumer runner flushed."""
    values: list[float] = []
    for doc in _json_lines(logs):
        if "EventLatencyMs" not in doc or doc.get("queue") != "billing":
            continue
        value = doc.get("EventLatencyMs")
        values.extend(value if isinstance(value, list) else [value])
    return [float(v) for v in values if isinstance(v, int | float)]


# --- the run ----------------------------------------------------------------------------------------

def run(options: Options) -> Report:
    report = Report()
    data_dir = Path(options.data_dir or mkdtemp(prefix="jucr-chaos-"))
    extra = {"BILLING_CHAOS_CRASH_RATE": str(options.crash_rate), "WALLET_OPENING_BALANCE": options.opening_balance}
    say(f"starting the local stack in {data_dir} (crash rate per billing step {options.crash_rate})")
    stack = ChaosStack(data_dir, extra)
    try:
        stack.start()
        _run_on(stack, options, report)
    finally:
        stack.stop()
    report.numbers["dataDir"] = str(data_dir)
    return report


def _run_on(stack: ChaosStack, options: Options, report: Report) -> None:
    capture = Capture(stack)
    capture.start()
    t0 = time.monotonic()
    users = register_users(stack, options.users, options.seed)
    db = stack.database()
    deadline = time.monotonic() + 120
    while db["wallets"].count_documents({}) < len(users) and time.monotonic() < deadline:
        time.sleep(0.5)
    report.numbers["registerSeconds"] = round(time.monotonic() - t0, 1)
    say(f"registered {len(users)} users through /graphql register; wallets open "
        f"({report.numbers['registerSeconds']} s)")
    plan = make_plan(users, options)
    say(f"plan: {len(plan.deliveries)} deliveries, {len(plan.valid) + len(plan.poison)} distinct sessions "
        f"({len(plan.duplicated)} delivered more than once, {len(plan.poison)} poison), shuffled")
    outage: dict[str, Any] = {}
    outage_thread = None
    put_started = time.monotonic()
    trigger = round(len(plan.deliveries) * options.outage_at) if options.outage_seconds > 0 else -1

    step = max(10, len(plan.deliveries) // 10 // 10 * 10)

    def progress(done: int) -> None:
        nonlocal outage_thread
        if done % step == 0 or done == len(plan.deliveries):
            billed = len(distinct_sessions(capture.snapshot(), "INVOICE_GENERATED"))
            say(f"put {done}/{len(plan.deliveries)} ({time.monotonic() - put_started:.0f} s); "
                f"sessions invoiced so far {billed}")
        if outage_thread is None and trigger >= 0 and done >= trigger:
            def fault() -> None:
                say(f"fault: store down for {options.outage_seconds:g} s (after {done} puts)")
                outage.update(stack.take_store_down(options.outage_seconds))
                say(f"fault: store back ({outage})")
            outage_thread = threading.Thread(target=fault, daemon=True)
            outage_thread.start()

    first_put = put_all(stack, plan, options.rate, options.max_backlog, progress, max_hold=options.timeout)
    put_seconds = time.monotonic() - put_started
    say(f"put {len(plan.deliveries)} events in {put_seconds:.1f} s ({len(plan.deliveries) / put_seconds:.0f}/s)")
    if outage_thread is not None:
        outage_thread.join()
    depths = wait_until_settled(stack, capture, plan, options.timeout)
    settle_seconds = time.monotonic() - put_started
    # one last drain so nothing published at the end is missed
    while capture.drain_once():
        pass
    capture.stopping.set()
    capture.join(timeout=5)
    records = capture.snapshot()

    invoices = check_invoices(db, plan, report)
    opening_cents = int((Decimal(options.opening_balance) * 100).to_integral_value())
    check_wallets(db, users, invoices, opening_cents, report)
    check_poison(db, records, plan, report)
    report.check("no message left in flight (source queues and DLQs, after the reconciler ran)",
                 not any(depths.values()), json.dumps(depths))
    check_bus(records, invoices, report)
    evidence = fault_evidence(stack.logs())
    if options.crash_rate > 0:
        report.check("faults happened: injected handler crashes", evidence.get("chaosCrashes", 0) > 0,
                     f"{evidence.get('chaosCrashes', 0)} crashes")
    if options.outage_seconds > 0:
        report.check("faults happened: store outage", bool(outage.get("downSeconds")), json.dumps(outage))
    slo = slo_metric_samples(stack.logs())
    report.check("EventLatencyMs recorded by the billing consumer (EMF)", len(slo) > 0, f"{len(slo)} samples")

    lat = latencies(records, first_put)
    paid = sum(1 for i in invoices if i["status"] == "PAID")
    report.numbers.update({
        "users": len(users), "deliveries": len(plan.deliveries),
        "distinctSessions": len(plan.valid) + len(plan.poison), "validSessions": len(plan.valid),
        "poisonSessions": len(plan.poison), "duplicatedSessions": len(plan.duplicated),
        "invoices": len(invoices), "paid": paid, "unpaid": len(invoices) - paid,
        "putSeconds": round(put_seconds, 1), "settleSeconds": round(settle_seconds, 1),
        "deliveriesPerSecond": round(len(plan.deliveries) / settle_seconds, 1),
        "sessionsBilledPerSecond": round(len(invoices) / settle_seconds, 1),
        "latencySeconds": {"count": len(lat), "p50": round(percentile(lat, 50), 2),
                           "p95": round(percentile(lat, 95), 2), "p99": round(percentile(lat, 99), 2),
                           "max": round(max(lat), 2) if lat else None},
        "eventLatencyMetric": {"samples": len(slo), "p99Ms": round(percentile(slo, 99)) if slo else None},
        "faults": {**evidence, "storeOutage": outage}, "options": vars(options),
    })
    if lat:
        report.numbers["latencySeconds"]["mean"] = round(statistics.fmean(lat), 2)


def print_report(report: Report) -> None:
    n = report.numbers
    print()
    print("== chaos run ==")
    for key in ("users", "deliveries", "distinctSessions", "duplicatedSessions", "poisonSessions", "invoices", "paid",
                "unpaid", "putSeconds", "settleSeconds", "deliveriesPerSecond", "sessionsBilledPerSecond"):
        print(f"  {key:24} {n.get(key)}")
    print(f"  {'faults':24} {json.dumps(n.get('faults'))}")
    lat = n.get("latencySeconds", {})
    print(f"  SESSION_ENDED put -> PAYMENT_COMPLETED (s): p50 {lat.get('p50')}  p95 {lat.get('p95')}  "
          f"p99 {lat.get('p99')}  max {lat.get('max')}  (n={lat.get('count')})")
    print(f"  EventLatencyMs (consumer metric, billing): {json.dumps(n.get('eventLatencyMetric'))}")
    print("== checks ==")
    for name, ok, detail in report.checks:
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}: {detail}")
    print(f"== {'ALL CHECKS PASSED' if report.ok else 'MISMATCH'} ==")
    print(json.dumps({"chaos": n, "ok": report.ok}, default=str))


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.splitlines()[0])
    defaults = Options()
    parser.add_argument("--users", type=int, default=defaults.users)
    parser.add_argument("--events", type=int, default=defaults.events, help="SESSION_ENDED deliveries in all")
    parser.add_argument("--duplicate-share", type=float, default=defaults.duplicate_share,
                        help="share of distinct sessions delivered more than once")
    parser.add_argument("--poison-share", type=float, default=defaults.poison_share,
                        help="share of distinct sessions with an invalid payload")
    parser.add_argument("--crash-rate", type=float, default=defaults.crash_rate,
                        help="probability of a handler crash after each billing step")
    parser.add_argument("--outage-seconds", type=float, default=defaults.outage_seconds,
                        help="store down this long mid-run (0 = no outage)")
    parser.add_argument("--outage-at", type=float, default=defaults.outage_at,
                        help="share of the events put before the outage starts")
    parser.add_argument("--rate", type=float, default=defaults.rate, help="events put per second at most (0 = no cap)")
    parser.add_argument("--max-backlog", type=int, default=defaults.max_backlog,
                        help="hold puts while the billing queue has more messages than this (0 = never)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--opening-balance", default=defaults.opening_balance)
    parser.add_argument("--timeout", type=float, default=defaults.timeout, help="seconds to wait for settling")
    parser.add_argument("--data-dir", default=None)
    return Options(**{k.replace("-", "_"): v for k, v in vars(parser.parse_args(argv)).items()})


def _stop_on_sigterm(signum, frame) -> None:
    """``kill`` / a CI timeout: unwind like Ctrl-C, so ``run`` stops the stack it started."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    report = run(options)
    print_report(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
