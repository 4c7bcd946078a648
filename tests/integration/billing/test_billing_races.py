"""Twin deliveries and twin corrections on the embedded store, made deterministic.

Each test lets one caller run to the end at the worst moment of another
(between its read and its write), the interleaving a real race produces.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from chalicelib.billing import service
from chalicelib.billing.repository import INDEXES, BillingRepository
from chalicelib.billing.service import BillingDeps, BillingPolicy, TransientError
from chalicelib.contracts.errors import ValidationError
from chalicelib.contracts.events import PAYMENT_COMPLETED, USER_REGISTERED, parse_event
from chalicelib.events.publisher import RecordingPublisher
from chalicelib.store import ensure_indexes

SEED = {"eventType": "SESSION_ENDED", "sessionId": "6fe27f6e-ff2d-4dda-9f86-3de70e1a4bbf",
        "userId": "0b1732fa-631a-4952-b6d6-2d586ed9dbf8", "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f",
        "energyKwh": 22.4, "durationMinutes": 58, "endedAt": "2026-02-21T14:31:00Z"}
T1 = dt.datetime(2026, 2, 21, 14, 31, 5, 123000, tzinfo=dt.UTC)
T2 = T1 + dt.timedelta(seconds=7)


class Crash(Exception):
    """Stands in for the Lambda being killed."""


class _Interleaved(BillingRepository):
    """A repository that runs ``then()`` once, right after the first read named ``at`` returns."""

    def __init__(self, db, at: str, then) -> None:
        super().__init__(db)
        self._at, self._then = at, then

    def _once(self, result):
        then, self._then = self._then, None
        if then is not None:
            then()
        return result

    def invoice(self, invoice_id):
        result = super().invoice(invoice_id)
        return self._once(result) if self._at == "invoice" else result

    def credit_notes_of(self, invoice_id):
        result = super().credit_notes_of(invoice_id)
        return self._once(result) if self._at == "credit_notes_of" else result


def _deps(repo, settings, publisher, clock_at) -> BillingDeps:
    return BillingDeps(repo=repo, publisher=publisher, clock=lambda: clock_at,
                       policy=BillingPolicy.from_settings(settings), sleep=lambda seconds: None)


@pytest.fixture
def base(db, settings):
    ensure_indexes(db, INDEXES)
    publisher = RecordingPublisher(clock=lambda: T1)
    deps = _deps(BillingRepository(db), settings, publisher, T1)
    service.open_wallet(deps, parse_event(USER_REGISTERED, {"userId": SEED["userId"],
                                                            "registeredAt": "2026-02-20T10:00:00Z"}))
    return deps


def test_a_twin_delivery_that_read_before_the_other_settled_publishes_the_same_payment(db, settings, base):
    event = parse_event("SESSION_ENDED", SEED)
    # Twin B reads the invoice (issued, not yet paid); twin A then bills to the end; then B goes on.
    service._issue_invoice(base, parse_event("SESSION_ENDED", SEED).payload, service.invoice_id_for(SEED["sessionId"]))
    late = _Interleaved(db, "invoice", lambda: service.bill_session(base, event))
    twin = _deps(late, settings, base.publisher, T2)

    outcome = service.bill_session(twin, event)

    invoice = db.invoices.find_one({})
    assert invoice["payment"]["at"] == T1, "the first payment recorded stays"
    assert outcome["payment"] == "COMPLETED"
    paid = base.publisher.of_type(PAYMENT_COMPLETED)
    assert paid and all(e == paid[0] for e in paid), "one eventId, one content (the same paidAt)"
    debits = list(db.ledger.find({"sessionId": SEED["sessionId"]}))
    assert [(d["amountCents"], d["status"]) for d in debits] == [(-1040, "APPLIED")]
    assert db.wallets.find_one({})["balanceCents"] == 5000 - 1040


def test_a_twin_holding_a_stale_pending_entry_keeps_the_first_outcome(db, base):
    """The entry is settled under the wallet's lease after a re-read: a stale PENDING copy changes nothing."""
    entry = {"_id": "e1", "walletId": SEED["userId"], "kind": "DEBIT", "sessionId": "s1", "amountCents": -6000,
             "currency": "EUR", "status": "PENDING", "createdAt": T1}
    base.repo.insert_ledger_entry(entry)
    assert service._apply(base, SEED["userId"], entry, guard_floor=True) == "REJECTED"  # 5000 does not cover it
    db.wallets.update_one({"_id": SEED["userId"]}, {"$inc": {"balanceCents": 5000}})  # now it would
    assert service._apply(base, SEED["userId"], dict(entry), guard_floor=True) == "REJECTED"
    stored = db.ledger.find_one({"_id": "e1"})
    assert (stored["status"], stored["reason"]) == ("REJECTED", "INSUFFICIENT_FUNDS")
    assert db.wallets.find_one({})["balanceCents"] == 10000, "the stale twin debited nothing"


def test_a_credit_note_retry_with_another_amount_refunds_what_the_note_says(db, settings, base):
    invoice_id = service.bill_session(base, parse_event("SESSION_ENDED", SEED))["invoiceId"]

    class CrashBeforeRefund(BillingRepository):
        def insert_ledger_entry(self, document):
            if document["kind"] == "REFUND":
                raise Crash("killed after the note, before its refund")
            return super().insert_ledger_entry(document)

    crashing = _deps(CrashBeforeRefund(db), settings, base.publisher, T1)
    with pytest.raises(Crash):
        service.issue_credit_note(crashing, invoice_id, amount=Decimal("5.50"), reason="faulty", key="c1")

    note = service.issue_credit_note(base, invoice_id, amount=Decimal("2.00"), reason="faulty", key="c1")

    assert note["totalCents"] == -550
    refund = db.ledger.find_one({"kind": "REFUND"})
    assert (refund["amountCents"], refund["status"]) == (550, "APPLIED")
    assert db.wallets.find_one({})["balanceCents"] == 5000 - 1040 + 550


def test_concurrent_credit_notes_never_exceed_the_invoice_total(db, settings, base):
    invoice_id = service.bill_session(base, parse_event("SESSION_ENDED", SEED))["invoiceId"]
    outcomes: list[object] = []

    def other_credit():
        try:
            outcomes.append(service.issue_credit_note(base, invoice_id, amount=Decimal("6.00"), reason="b", key="b"))
        except (TransientError, ValidationError) as exc:
            outcomes.append(exc)

    # Caller A reads the credits so far; caller B tries its whole credit right then; A goes on.
    racing = _deps(_Interleaved(db, "credit_notes_of", other_credit), settings, base.publisher, T1)
    first = service.issue_credit_note(racing, invoice_id, amount=Decimal("6.00"), reason="a", key="a")

    assert first["totalCents"] == -600
    assert isinstance(outcomes[0], TransientError), "the other caller waits for the lock, then retries later"
    credited = -sum(n["totalCents"] for n in db.credit_notes.find({"invoiceId": invoice_id}))
    assert credited == 600 <= 1040
    with pytest.raises(ValidationError):  # B's retry now sees A's note
        service.issue_credit_note(base, invoice_id, amount=Decimal("6.00"), reason="b", key="b")
