"""Billing a Lambda batch: each session its own outcome, crashes mid-batch, round trips counted."""

from __future__ import annotations

import uuid

import pytest
from pymongo import MongoClient, monitoring

from chalicelib.billing import service
from chalicelib.billing.plausibility import UNKNOWN_USER, SessionImplausible
from chalicelib.billing.repository import BillingRepository
from chalicelib.billing.service import STEPS, BillingDeps, SessionRequest, WalletNotOpen
from chalicelib.contracts.events import (
    INVOICE_GENERATED,
)
from chalicelib.events.consumer import PermanentError
from tests.integration.billing.sessions import SEED, Crash, open_wallet, session


def test_a_reused_session_id_with_another_user_is_a_permanent_failure(db, deps):
    other = str(uuid.uuid4())
    open_wallet(deps)
    open_wallet(deps, other)
    first = service.bill_session(deps, session())
    with pytest.raises(PermanentError, match="re-used sessionId"):
        service.bill_session(deps, session(userId=other))
    assert db.invoices.count_documents({}) == 1 and db.invoices.find_one({})["_id"] == first["invoiceId"]
    assert db.wallets.find_one({"_id": other})["balanceCents"] == 5000
    assert db.ledger.count_documents({"walletId": other, "kind": "DEBIT"}) == 0
    # the same in one batch: the first delivery is billed, the other user's is refused on its own
    fresh = str(uuid.uuid4())
    outcomes = service.bill_sessions(deps, [SessionRequest(session(sessionId=fresh)),
                                            SessionRequest(session(sessionId=fresh, userId=other))])
    assert outcomes[0]["payment"] == "COMPLETED" and isinstance(outcomes[1], PermanentError)
    assert db.wallets.find_one({"_id": other})["balanceCents"] == 5000


def test_a_batch_bills_each_session_with_its_own_outcome(db, deps):
    open_wallet(deps)
    poor, rich = str(uuid.uuid4()), str(uuid.uuid4())
    open_wallet(deps, poor)
    db.wallets.update_one({"_id": poor}, {"$set": {"balanceCents": 100}})
    done = session(sessionId=str(uuid.uuid4()))
    service.bill_session(deps, done)
    new = session(sessionId=str(uuid.uuid4()))
    requests = [SessionRequest(new), SessionRequest(new),  # a duplicate inside the batch
                SessionRequest(done),  # billed before: resumes, publishes nothing new
                SessionRequest(session(sessionId=str(uuid.uuid4()), userId=poor)),  # not covered
                SessionRequest(session(sessionId=str(uuid.uuid4()), userId=rich)),  # no wallet yet
                SessionRequest(session(sessionId=str(uuid.uuid4()), userId=rich), final_attempt=True)]
    outcomes = service.bill_sessions(deps, requests)
    assert outcomes[0] == outcomes[1] and outcomes[0]["payment"] == "COMPLETED"
    assert outcomes[2]["payment"] == "COMPLETED"
    assert (outcomes[3]["status"], outcomes[3]["payment"]) == ("OPEN", "FAILED")
    assert isinstance(outcomes[4], WalletNotOpen)
    assert isinstance(outcomes[5], SessionImplausible) and str(outcomes[5]) == UNKNOWN_USER
    assert db.invoices.count_documents({"userId": rich}) == 0, "no invoice for a user without a wallet"
    assert db.wallets.find_one({"_id": SEED["userId"]})["balanceCents"] == 5000 - 2 * 1040
    assert db.wallets.find_one({"_id": poor})["balanceCents"] == 100
    assert len(deps.publisher.of_type(INVOICE_GENERATED)) == 3, "one per newly settled session, none for the rest"
    numbers = sorted(i["number"] for i in db.invoices.find({}))
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, 4)], "one block per batch, no number burnt"


@pytest.mark.parametrize("step", STEPS)
def test_a_batch_crashed_after_each_step_then_redelivered_bills_exactly_once(db, deps, step):
    users = [str(uuid.uuid4()) for _ in range(3)]
    for user in users:
        open_wallet(deps, user)
    requests = [SessionRequest(session(sessionId=str(uuid.uuid4()), userId=users[i % 3], energyKwh=40))
                for i in range(9)]  # 18.56 each: two fit in 50.00, the third of each wallet is refused

    def crash_at(name: str) -> None:
        if name == step:
            raise Crash(name)

    deps.checkpoint = crash_at
    assert all(isinstance(o, Crash) for o in service.bill_sessions(deps, requests))
    deps.checkpoint = lambda name: None
    again = service.bill_sessions(deps, requests)
    assert not [o for o in again if isinstance(o, Exception)]
    assert sorted(o["payment"] for o in again) == ["COMPLETED"] * 6 + ["FAILED"] * 3
    for user in users:
        wallet = db.wallets.find_one({"_id": user})
        assert (wallet["balanceCents"], wallet["pending"]) == (5000 - 2 * 1856, [])
        entries = list(db.ledger.find({"walletId": user, "kind": "DEBIT"}))
        assert sorted(e["status"] for e in entries) == ["APPLIED", "APPLIED", "REJECTED"]
    assert db.invoices.count_documents({"status": "PAID"}) == 6
    assert len({e["eventId"] for e in deps.publisher.published}) == 18


class CountingListener(monitoring.CommandListener):
    def __init__(self) -> None:
        self.commands: list[str] = []

    def started(self, event) -> None:
        if event.command_name not in {"endSessions", "hello", "isMaster", "ismaster"}:
            self.commands.append(event.command_name)

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


def test_a_batch_of_ten_new_sessions_costs_ten_store_round_trips_and_its_redelivery_two(db, deps, settings):
    users = [str(uuid.uuid4()) for _ in range(4)]
    for user in users:
        open_wallet(deps, user)
    listener = CountingListener()
    client = MongoClient(settings.store.mongodb_uri, tz_aware=True, event_listeners=[listener])
    counted = BillingDeps(repo=BillingRepository(client[settings.store.mongodb_db]), publisher=deps.publisher,
                          clock=deps.clock, policy=deps.policy)
    requests = [SessionRequest(session(sessionId=str(uuid.uuid4()), userId=users[i % 4])) for i in range(10)]
    try:
        assert all(o["payment"] == "COMPLETED" for o in service.bill_sessions(counted, requests))
        first = list(listener.commands)
        listener.commands.clear()
        service.bill_sessions(counted, requests)
        again = list(listener.commands)
    finally:
        client.close()
    # read invoices, wallets, tariffs, counter, insert invoices, debit, insert ledger, settle, clear markers, mark
    assert first == ["find", "find", "find", "findAndModify", "insert", "update", "insert", "update", "update",
                     "update"], first
    assert again == ["find", "find"], "invoices, then wallets (for a debit nobody counts)"
