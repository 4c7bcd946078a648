"""Implausible sessions on the embedded store: refused before anything is stored, while redeliveries still resume."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest

from chalicelib.billing import service
from chalicelib.billing.plausibility import AHEAD, OTHER_USAGE, TOO_OLD, UNKNOWN_USER, SessionImplausible
from chalicelib.billing.service import BillingDeps, SessionRequest, WalletNotOpen
from chalicelib.contracts.errors import SessionReused
from tests.integration.billing.sessions import NOW, SEED, Crash, assert_billed_once, open_wallet, session


def iso(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def nothing_stored(db, deps, balance_cents: int = 5000) -> None:
    assert db.invoices.count_documents({}) == 0
    assert db.counters.count_documents({}) == 0, "no invoice number taken"
    assert db.ledger.count_documents({"kind": "DEBIT"}) == 0
    assert db.wallets.find_one({"_id": SEED["userId"]})["balanceCents"] == balance_cents
    assert deps.publisher.published == []


@pytest.mark.parametrize(("ended_at", "reason"), [
    (NOW - dt.timedelta(days=30, seconds=1), TOO_OLD),
    (dt.datetime(2019, 6, 1, tzinfo=dt.UTC), TOO_OLD),
    (NOW + dt.timedelta(seconds=301), AHEAD),
])
def test_a_session_outside_the_time_window_is_refused_and_nothing_is_stored(db, deps, ended_at, reason):
    open_wallet(deps)
    with pytest.raises(SessionImplausible) as refused:
        service.bill_session(deps, session(endedAt=iso(ended_at)))
    assert str(refused.value) == reason
    nothing_stored(db, deps)


@pytest.mark.parametrize("ended_at", [NOW - dt.timedelta(days=29, hours=23), NOW + dt.timedelta(seconds=299)])
def test_a_session_inside_the_window_is_billed(db, deps, ended_at):
    open_wallet(deps)
    assert service.bill_session(deps, session(endedAt=iso(ended_at)))["payment"] == "COMPLETED"


def test_the_window_comes_from_the_policy(db, deps):
    open_wallet(deps)
    deps.policy = dataclasses.replace(deps.policy, max_session_age=dt.timedelta(days=1))
    with pytest.raises(SessionImplausible, match="SESSION_MAX_AGE_DAYS"):
        service.bill_session(deps, session(endedAt=iso(NOW - dt.timedelta(days=2))))


def test_an_invoiced_session_delivered_after_the_window_still_finishes_once(db, deps):
    open_wallet(deps)

    def crash(step: str) -> None:
        if step == "wallet_debited":
            raise Crash(step)

    deps.checkpoint = crash
    with pytest.raises(Crash):
        service.bill_session(deps, session())
    deps.checkpoint = lambda step: None
    deps.clock = lambda: NOW + dt.timedelta(days=45)  # e.g. replayed from the DLQ after a long outage
    assert service.bill_session(deps, session())["payment"] == "COMPLETED"
    assert_billed_once(db, deps)


def test_a_new_session_without_a_wallet_gets_no_invoice_and_is_refused_on_the_last_receive(db, deps):
    with pytest.raises(WalletNotOpen):
        service.bill_session(deps, session())
    with pytest.raises(SessionImplausible) as refused:
        service.bill_session(deps, session(), final_attempt=True)
    assert str(refused.value) == UNKNOWN_USER
    assert db.invoices.count_documents({}) == 0 and db.counters.count_documents({}) == 0
    assert db.ledger.count_documents({}) == 0 and deps.publisher.published == []


@pytest.mark.parametrize(("field", "value"), [
    ("energyKwh", 99.9), ("durationMinutes", 120), ("stationId", "another-station"),
    ("endedAt", "2026-02-21T14:00:00Z"), ("idleMinutes", 30),
])
def test_the_same_session_id_with_other_usage_is_refused_and_the_invoice_untouched(db, deps, field, value):
    open_wallet(deps)
    billed = service.bill_session(deps, session())

    def state() -> tuple:
        published = len(deps.publisher.published)
        return db.invoices.find_one({}), db.wallets.find_one({}), list(db.ledger.find({})), published

    before = state()
    with pytest.raises(SessionReused) as refused:
        service.bill_session(deps, session(**{field: value}))
    assert str(refused.value) == f"{OTHER_USAGE} ({field})"
    assert state() == before
    assert service.bill_session(deps, session(energyKwh="22.40")) == billed, "an identical redelivery still resumes"
    assert_billed_once(db, deps)


def test_in_one_batch_a_duplicate_with_other_usage_is_refused_on_its_own(db, deps):
    open_wallet(deps)
    outcomes = service.bill_sessions(deps, [SessionRequest(session()), SessionRequest(session(energyKwh=5)),
                                            SessionRequest(session())])
    assert outcomes[0] == outcomes[2] and outcomes[0]["payment"] == "COMPLETED"
    assert isinstance(outcomes[1], SessionReused)
    assert_billed_once(db, deps)


def twin_stores_first(deps: BillingDeps, twin_event, twin_crash: str | None = None) -> None:
    """Just before this attempt inserts its invoice (its wallet already read), a twin bills the session."""
    twin = BillingDeps(repo=deps.repo, publisher=deps.publisher, clock=deps.clock, policy=deps.policy)

    def crash(step: str) -> None:
        if step == twin_crash:
            raise Crash(step)

    def meanwhile(step: str) -> None:
        if step == "number_reserved":
            twin.checkpoint = crash
            try:
                service.bill_session(twin, twin_event)
            except Crash:
                pass

    deps.checkpoint = meanwhile


def test_a_twin_that_stored_and_debited_after_our_wallet_read_is_followed_not_repeated(db, deps):
    open_wallet(deps)
    twin_stores_first(deps, session(), twin_crash="wallet_debited")  # the twin dies with its marker on the wallet
    outcome = service.bill_session(deps, session())
    assert (outcome["status"], outcome["payment"]) == ("PAID", "COMPLETED")
    wallet = db.wallets.find_one({})
    assert (wallet["balanceCents"], wallet["pending"]) == (5000 - 1040, [])
    assert db.ledger.count_documents({"kind": "DEBIT", "status": "APPLIED"}) == 1
    assert db.invoices.count_documents({}) == 1


def test_a_twin_with_other_usage_that_stored_first_keeps_its_invoice(db, deps):
    open_wallet(deps)
    twin_stores_first(deps, session(energyKwh=10))
    with pytest.raises(SessionReused):
        service.bill_session(deps, session())
    [invoice] = list(db.invoices.find({}))
    assert invoice["usage"]["energyKwh"] == "10" and invoice["status"] == "PAID"
    assert db.ledger.count_documents({"kind": "DEBIT"}) == 1


def test_a_batch_refuses_each_implausible_session_alone(db, deps):
    open_wallet(deps)
    stranger = str(uuid.uuid4())
    requests = [SessionRequest(session(sessionId=str(uuid.uuid4()), endedAt="2019-06-01T00:00:00Z")),
                SessionRequest(session(sessionId=str(uuid.uuid4()), userId=stranger), final_attempt=True),
                SessionRequest(session())]
    old, unknown, fine = service.bill_sessions(deps, requests)
    assert str(old) == TOO_OLD and str(unknown) == UNKNOWN_USER
    assert fine["payment"] == "COMPLETED"
    assert_billed_once(db, deps)
