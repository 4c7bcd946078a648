"""Billing logic on the embedded store: exactly-once effect under redelivery, crashes and batches."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from functools import partial

import pytest

from chalicelib.billing import service
from chalicelib.billing.plausibility import SessionImplausible
from chalicelib.billing.service import STEPS, WalletNotOpen
from chalicelib.contracts.errors import NotFound, ValidationError
from chalicelib.contracts.events import (
    INVOICE_GENERATED,
    PAYMENT_COMPLETED,
    PAYMENT_FAILED,
)
from chalicelib.events.consumer import TransientError
from tests.concurrency import run_concurrently
from tests.integration.billing.sessions import NOW, SEED, Crash, assert_billed_once, open_wallet, session


def test_seed_session_is_billed_with_the_default_tariff(db, deps):
    open_wallet(deps)
    outcome = service.bill_session(deps, session(), correlation_id="corr-1")
    assert outcome == {"invoiceId": service.invoice_id_for(SEED["sessionId"]), "number": "INV-2026-000001",
                       "status": "PAID", "total": "10.40", "payment": "COMPLETED"}
    assert_billed_once(db, deps)
    generated, completed = deps.publisher.published
    assert generated["eventType"] == INVOICE_GENERATED and completed["eventType"] == PAYMENT_COMPLETED
    assert (generated["net"], generated["vat"], generated["total"], generated["status"]) == (
        "8.74", "1.66", "10.40", "PAID")
    assert completed["amount"] == "10.40" and generated["correlationId"] == "corr-1"
    invoice = db.invoices.find_one({})
    assert invoice["tariff"]["energyPerKwh"] == "0.39" and invoice["tariff"]["vatRate"] == "0.19"
    assert invoice["lines"] == [{"component": "ENERGY", "quantity": "22.4", "unitPrice": "0.39", "amountCents": 874}]


def test_redelivery_four_times_bills_once(db, deps):
    open_wallet(deps)
    for _ in range(4):
        service.bill_session(deps, session())
    assert_billed_once(db, deps)
    assert len(deps.publisher.published) == 2, "after the invoice is marked published, nothing is re-sent"


@pytest.mark.parametrize("step", STEPS)
def test_crash_after_each_step_then_redelivery_bills_exactly_once(db, deps, step):
    open_wallet(deps)

    def crash_at(name: str) -> None:
        if name == step:
            raise Crash(name)

    deps.checkpoint = crash_at
    with pytest.raises(Crash):
        service.bill_session(deps, session())
    deps.checkpoint = lambda name: None
    service.bill_session(deps, session())
    service.bill_session(deps, session())
    assert_billed_once(db, deps)


def test_publish_failure_is_retried_without_rebilling(db, deps):
    open_wallet(deps)
    deps.publisher.fail_next = 1
    with pytest.raises(Exception, match="injected"):
        service.bill_session(deps, session())
    service.bill_session(deps, session())
    assert_billed_once(db, deps)


def test_insufficient_funds_leaves_invoice_open_and_publishes_payment_failed(db, deps):
    open_wallet(deps)
    outcome = service.bill_session(deps, session(energyKwh=200))  # 78.00 + VAT > 50.00
    assert outcome["status"] == "OPEN" and outcome["payment"] == "FAILED"
    assert db.wallets.find_one({})["balanceCents"] == 5000
    assert db.ledger.find_one({"sessionId": SEED["sessionId"]})["status"] == "REJECTED"
    failed = deps.publisher.of_type(PAYMENT_FAILED)
    assert [f["reason"] for f in failed] == ["INSUFFICIENT_FUNDS"]
    assert deps.publisher.of_type(INVOICE_GENERATED)[0]["status"] == "OPEN"
    service.bill_session(deps, session(energyKwh=200))
    assert db.wallets.find_one({})["balanceCents"] == 5000


def test_missing_wallet_is_transient_until_the_final_attempt(db, deps):
    with pytest.raises(WalletNotOpen):
        service.bill_session(deps, session())
    assert db.invoices.count_documents({}) == 0 and deps.publisher.published == [], "no invoice before the wallet"
    assert db.counters.count_documents({}) == 0, "no number taken for it"
    open_wallet(deps)  # the registration arrives late
    service.bill_session(deps, session())
    assert_billed_once(db, deps)


def test_missing_wallet_on_the_final_attempt_is_an_unknown_user_and_nothing_is_stored(db, deps):
    with pytest.raises(SessionImplausible, match="unknown user"):
        service.bill_session(deps, session(), final_attempt=True)
    assert db.invoices.count_documents({}) == 0 and db.ledger.count_documents({}) == 0
    assert deps.publisher.published == []
    open_wallet(deps)  # registered after all: a replay of the dead letter bills it normally
    assert service.bill_session(deps, session())["payment"] == "COMPLETED"
    assert_billed_once(db, deps)


def test_balance_never_goes_below_the_floor_under_concurrent_sessions(db, deps):
    open_wallet(deps)  # 50.00; each session costs 10.40 -> only four fit
    sessions = [session(sessionId=str(uuid.uuid4())) for _ in range(6)]
    pending = sessions
    for attempt in range(5):  # as SQS would: what failed transiently comes back, the last time as final
        retry: list = []

        def bill(s, final=attempt == 4, retry=retry) -> None:
            try:
                service.bill_session(deps, s, final_attempt=final)
            except TransientError:  # a concurrent debit was still in flight when the floor refused
                retry.append(s)

        run_concurrently(*(partial(bill, s) for s in pending))
        pending = retry
    assert pending == []
    wallet = db.wallets.find_one({})
    assert wallet["balanceCents"] == 5000 - 4 * 1040
    assert db.ledger.count_documents({"status": "APPLIED", "kind": "DEBIT"}) == 4
    assert db.ledger.count_documents({"status": "REJECTED"}) == 2
    numbers = sorted(i["number"] for i in db.invoices.find({}))
    assert len(set(numbers)) == 6


def test_invoice_numbers_are_ordered_per_year_and_not_burnt_by_retries(db, deps):
    open_wallet(deps)
    first = service.bill_session(deps, session(sessionId=str(uuid.uuid4())))
    step = "number_reserved"

    def crash(name):
        if name == step:
            raise Crash(name)

    deps.checkpoint = crash
    second_session = session(sessionId=str(uuid.uuid4()))
    with pytest.raises(Crash):
        service.bill_session(deps, second_session)
    deps.checkpoint = lambda name: None
    second = service.bill_session(deps, second_session)
    third = service.bill_session(deps, session(sessionId=str(uuid.uuid4())))
    assert [first["number"], second["number"], third["number"]] == [
        "INV-2026-000001", "INV-2026-000002", "INV-2026-000003"]
    # the counter hands the same block to the same key again (a retry right after a crash), a new one otherwise
    repo = deps.repo
    assert repo.take_numbers("INV-2026", "lost", 2) == 5
    assert repo.take_numbers("INV-2026", "lost", 2) == 5
    assert repo.take_numbers("INV-2026", "other", 1) == 6
    assert repo.take_numbers("INV-2026", "lost", 2) == 8, "another key took numbers in between: a new block"


def test_station_tariff_is_copied_onto_the_invoice(db, deps):
    open_wallet(deps)
    deps.repo.put_tariff(SEED["stationId"], {"currency": "EUR", "timePerHour": "2.00", "timeStepSeconds": 300,
                                             "vatRate": "0.10"})
    service.bill_session(deps, session(durationMinutes=118))  # 118 min -> 120 min -> 4.00 + 0.40
    deps.repo.put_tariff(SEED["stationId"], {"currency": "EUR", "timePerHour": "9.00", "vatRate": "0.10"})
    invoice = db.invoices.find_one({})
    assert (invoice["netCents"], invoice["vatCents"], invoice["totalCents"]) == (400, 40, 440)
    assert invoice["tariff"]["timePerHour"] == "2.00"


def test_wallet_opening_is_idempotent(db, deps):
    assert open_wallet(deps) is True
    assert open_wallet(deps) is False
    assert db.wallets.find_one({})["balanceCents"] == 5000
    assert db.ledger.count_documents({"kind": "OPENING"}) == 1


def test_credit_note_refunds_a_paid_invoice_once(db, deps):
    open_wallet(deps)
    invoice_id = service.bill_session(deps, session())["invoiceId"]
    note = service.issue_credit_note(deps, invoice_id, amount=Decimal("5.50"), reason="faulty connector", key="c1")
    again = service.issue_credit_note(deps, invoice_id, amount=Decimal("5.50"), reason="faulty connector", key="c1")
    assert note["_id"] == again["_id"] and note["number"] == "CN-2026-000001"
    assert (note["totalCents"], note["vatCents"], note["netCents"]) == (-550, -88, -462)
    assert db.wallets.find_one({})["balanceCents"] == 5000 - 1040 + 550
    assert db.invoices.find_one({})["totalCents"] == 1040, "the invoice itself is never edited"
    with pytest.raises(ValidationError):
        service.issue_credit_note(deps, invoice_id, amount=Decimal("5.00"), reason="too much", key="c2")


def test_queries_page_newest_first_and_hide_other_users(db, deps):
    open_wallet(deps)
    clock = iter(NOW + dt.timedelta(minutes=i) for i in range(100))
    deps.clock = lambda: next(clock)
    ids = [service.bill_session(deps, session(sessionId=str(uuid.uuid4()), energyKwh=1))["invoiceId"]
           for _ in range(5)]
    repo = deps.repo
    page1 = service.list_invoices(repo, SEED["userId"], 2)
    page2 = service.list_invoices(repo, SEED["userId"], 2, page1["nextToken"])
    page3 = service.list_invoices(repo, SEED["userId"], 2, page2["nextToken"])
    seen = [i["id"] for p in (page1, page2, page3) for i in p["items"]]
    assert seen == list(reversed(ids)) and page3["nextToken"] is None
    assert page1["items"][0]["total"] == "0.46" and page1["items"][0]["lines"][0]["amount"] == "0.39"
    assert service.get_invoice(repo, SEED["userId"], ids[0])["id"] == ids[0]
    with pytest.raises(NotFound):
        service.get_invoice(repo, str(uuid.uuid4()), ids[0])
    assert service.list_invoices(repo, str(uuid.uuid4()))["items"] == []
    with pytest.raises(ValidationError):
        service.list_invoices(repo, SEED["userId"], 2, "not-a-cursor")
    with pytest.raises(ValidationError):
        service.list_invoices(repo, SEED["userId"], 0)
    assert service.wallet_view(repo, SEED["userId"])["balance"] == f"{(5000 - 5 * 46) / 100:.2f}"
    assert service.wallet_view(repo, str(uuid.uuid4())) is None


def test_concurrent_duplicate_deliveries_of_one_session_bill_once(db, deps):
    open_wallet(deps)
    outcomes: list[object] = []

    def deliver():
        try:
            outcomes.append(service.bill_session(deps, session()))
        except BaseException as exc:  # noqa: BLE001 - collected: none is expected
            outcomes.append(exc)

    run_concurrently(*[deliver] * 6)
    assert len(outcomes) == 6 and all(o == outcomes[0] for o in outcomes), "no twin fails, all report the same"
    service.bill_session(deps, session())
    assert_billed_once(db, deps)


def test_a_debit_that_died_before_its_ledger_entry_is_counted_once_and_the_wallet_keeps_no_marker(db, deps):
    open_wallet(deps)
    sessions = [session(sessionId=str(uuid.uuid4()), energyKwh=1) for _ in range(8)]

    def die_after_debit(name: str) -> None:
        if name == "wallet_debited":
            raise Crash(name)

    deps.checkpoint = die_after_debit
    with pytest.raises(Crash):  # balance debited, marker on the wallet, no ledger entry yet
        service.bill_session(deps, sessions[0])
    entry_id = service.ledger_entry_id(SEED["userId"], sessions[0].payload["sessionId"])
    assert db.ledger.find_one({"_id": entry_id}) is None
    assert [m["entry"] for m in db.wallets.find_one({})["pending"]] == [entry_id]
    deps.checkpoint = lambda name: None
    for later in sessions[1:]:  # other sessions of the wallet go on meanwhile
        service.bill_session(deps, later)
    service.bill_session(deps, sessions[0])  # the redelivery adopts the debit it finds, it does not repeat it

    invoices = list(db.invoices.find({}))
    assert len(invoices) == 8 and {i["status"] for i in invoices} == {"PAID"}
    wallet = db.wallets.find_one({"_id": SEED["userId"]})
    assert wallet["balanceCents"] == 5000 - sum(i["totalCents"] for i in invoices)
    assert wallet["pending"] == [], "the wallet document does not grow with the sessions it paid"
    applied = sum(e["amountCents"] for e in db.ledger.find({"walletId": SEED["userId"], "status": "APPLIED"}))
    assert applied == wallet["balanceCents"]
