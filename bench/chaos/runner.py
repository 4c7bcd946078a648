"""One chaos run from start to report: stack up, users, puts with the store outage, settle, checks, numbers."""

from __future__ import annotations

import json
import signal
import statistics
import threading
import time
from decimal import Decimal
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

from bench.chaos.checks import Report, check_bus, check_invoices, check_poison, check_wallets, distinct_sessions
from bench.chaos.measures import fault_evidence, latencies, percentile, slo_metric_samples
from bench.chaos.options import Options, parse_args
from bench.chaos.stack import Capture, ChaosStack, say
from bench.chaos.workload import Plan, make_plan, put_all, register_users

WATCHED_QUEUES = ("billing", "wallets", "billing-dlq", "wallets-dlq", "ocm-sync-dlq")


def run(options: Options) -> Report:
    report = Report()
    data_dir = Path(options.data_dir or mkdtemp(prefix="jucr-chaos-"))
    extra = {"BILLING_CHAOS_CRASH_RATE": str(options.crash_rate), "WALLET_OPENING_BALANCE": options.opening_balance}
    say(f"starting the local stack in {data_dir} (crash rate per billing step {options.crash_rate})")
    stack = ChaosStack.start(data_dir, extra)  # stops what it started if the start fails
    try:
        _run_on(stack, options, report)
    finally:
        stack.stop()
    report.numbers["dataDir"] = str(data_dir)
    return report


class StoreOutage:
    """Takes the store down once, in a thread, when the puts reach ``trigger`` deliveries (-1: never)."""

    def __init__(self, stack: ChaosStack, seconds: float, trigger: int) -> None:
        self.stack, self.seconds, self.trigger = stack, seconds, trigger
        self.result: dict[str, Any] = {}
        self.thread: threading.Thread | None = None

    def maybe_start(self, done: int) -> None:
        if self.thread is None and self.trigger >= 0 and done >= self.trigger:
            self.thread = threading.Thread(target=self._fault, args=(done,), daemon=True)
            self.thread.start()

    def _fault(self, done: int) -> None:
        say(f"fault: store down for {self.seconds:g} s (after {done} puts)")
        self.result.update(self.stack.take_store_down(self.seconds))
        say(f"fault: store back ({self.result})")

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join()


def _run_on(stack: ChaosStack, options: Options, report: Report) -> None:
    capture = Capture(stack)
    capture.start()
    try:
        _capture_run(stack, capture, options, report)
    finally:
        capture.stopping.set()  # a failed run must not leave it polling a stopped moto


def _capture_run(stack: ChaosStack, capture: Capture, options: Options, report: Report) -> None:
    users = _register(stack, options, report)
    plan = make_plan(users, options)
    say(f"plan: {len(plan.deliveries)} deliveries, {len(plan.valid) + len(plan.poison)} distinct sessions "
        f"({len(plan.duplicated)} delivered more than once, {len(plan.poison)} poison), shuffled")
    trigger = round(len(plan.deliveries) * options.outage_at) if options.outage_seconds > 0 else -1
    outage = StoreOutage(stack, options.outage_seconds, trigger)
    put_started = time.monotonic()
    step = max(10, len(plan.deliveries) // 10 // 10 * 10)

    def progress(done: int) -> None:
        if done % step == 0 or done == len(plan.deliveries):
            billed = len(distinct_sessions(capture.snapshot(), "INVOICE_GENERATED"))
            say(f"put {done}/{len(plan.deliveries)} ({time.monotonic() - put_started:.0f} s); "
                f"sessions invoiced so far {billed}")
        outage.maybe_start(done)

    first_put = put_all(stack, plan, options.rate, options.max_backlog, progress, max_hold=options.timeout)
    put_seconds = time.monotonic() - put_started
    say(f"put {len(plan.deliveries)} events in {put_seconds:.1f} s ({len(plan.deliveries) / put_seconds:.0f}/s)")
    outage.join()
    depths = wait_until_settled(stack, capture, plan, options.timeout)
    timing = {"putSeconds": round(put_seconds, 1), "settleSeconds": round(time.monotonic() - put_started, 1)}
    records = capture.finish()
    invoices = _check_all(stack, options, users, plan, records, depths, outage.result, report)
    _record_numbers(report, options, users, plan, invoices, latencies(records, first_put), timing,
                    {**fault_evidence(stack.logs()), "storeOutage": outage.result}, slo_metric_samples(stack.logs()))


def _register(stack: ChaosStack, options: Options, report: Report) -> list[str]:
    """Users through ``register``; their wallets are opened by the USER_REGISTERED choreography, so wait for them."""
    t0 = time.monotonic()
    users = register_users(stack, options.users, options.seed)
    db = stack.database()
    deadline = time.monotonic() + 120
    while db["wallets"].count_documents({}) < len(users) and time.monotonic() < deadline:
        time.sleep(0.5)
    report.numbers["registerSeconds"] = round(time.monotonic() - t0, 1)
    say(f"registered {len(users)} users through /graphql register; wallets open "
        f"({report.numbers['registerSeconds']} s)")
    return users


def queue_depths(stack: ChaosStack) -> dict[str, int]:
    return {short: sum(stack.queues.depth(short).values()) for short in WATCHED_QUEUES}


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


def _check_all(stack: ChaosStack, options: Options, users: list[str], plan: Plan, records: list[dict[str, Any]],
               depths: dict[str, int], outage: dict[str, Any], report: Report) -> list[dict[str, Any]]:
    db = stack.database()
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
    return invoices


def _record_numbers(report: Report, options: Options, users: list[str], plan: Plan, invoices: list[dict[str, Any]],
                    lat: list[float], timing: dict[str, float], faults: dict[str, Any], slo: list[float]) -> None:
    paid = sum(1 for i in invoices if i["status"] == "PAID")
    settle = timing["settleSeconds"] or 1e-9
    report.numbers.update({
        "users": len(users), "deliveries": len(plan.deliveries),
        "distinctSessions": len(plan.valid) + len(plan.poison), "validSessions": len(plan.valid),
        "poisonSessions": len(plan.poison), "duplicatedSessions": len(plan.duplicated),
        "invoices": len(invoices), "paid": paid, "unpaid": len(invoices) - paid, **timing,
        "deliveriesPerSecond": round(len(plan.deliveries) / settle, 1),
        "sessionsBilledPerSecond": round(len(invoices) / settle, 1),
        "latencySeconds": {"count": len(lat), "p50": round(percentile(lat, 50), 2),
                           "p95": round(percentile(lat, 95), 2), "p99": round(percentile(lat, 99), 2),
                           "max": round(max(lat), 2) if lat else None},
        "eventLatencyMetric": {"samples": len(slo), "p99Ms": round(percentile(slo, 99)) if slo else None},
        "faults": faults, "options": vars(options),
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


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    """``kill`` / a CI timeout: unwind like Ctrl-C, so ``run`` stops the stack it started."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None, description: str = "") -> int:
    options = parse_args(argv, description)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    report = run(options)
    print_report(report)
    return 0 if report.ok else 1
