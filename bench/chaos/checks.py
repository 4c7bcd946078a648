"""The chaos run's invariants: what the store and the bus must show once everything settled.

Each ``check_*`` adds named pass/fail lines to a ``Report``; the run exits 1 on any fail.
Exactly-once effect under at-least-once delivery is checked from both sides: the store
(one invoice per valid session, wallet = opening - paid, one ledger entry per invoice)
and the bus (one distinct event per fact, whatever the raw repeats).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from bench.chaos.workload import Plan


def distinct_sessions(records: list[dict[str, Any]], event_type: str) -> set[str]:
    return {r["detail"].get("sessionId") for r in records if r["type"] == event_type}


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

