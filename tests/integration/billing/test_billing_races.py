"""Twin deliveries and twin corrections on the embedded store, made deterministic.

Each test lets one caller run to the end at the worst moment of another (right after
one of its reads, before the write that depends on it), the interleaving a real race
or a stalled Lambda produces. The guards must make the late writer change nothing,
or undo what it did.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from chalicelib.billing import service
from chalicelib.billing.repository import INDEXES, BillingRepository, MarkerChange, Move
from chalicelib.billing.service import BillingDeps, BillingPolicy
from chalicelib.contracts.errors import ValidationError
from chalicelib.contracts.events import PAYMENT_COMPLETED, PAYMENT_FAILED, USER_REGISTERED, parse_event
from chalicelib.events.consumer import TransientError
from chalicelib.events.publisher import RecordingPublisher
from chalicelib.store import ensure_indexes
from tests.concurrency import run_concurrently

SEED = {"eventType": "SESSION_ENDED", "sessionId": "6fe27f6e-ff2d-4dda-9f86-3de70e1a4bbf",
        "userId": "0b1732fa-631a-4952-b6d6-2d586ed9dbf8", "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f",
        "energyKwh": 22.4, "durationMinutes": 58, "endedAt": "2026-02-21T14:31:00Z"}
T1 = dt.datetime(2026, 2, 21, 14, 31, 5, 123000, tzinfo=dt.UTC)
T2 = T1 + dt.timedelta(seconds=7)


class Crash(Exception):
    """Stands in for the Lambda being killed."""


class _Interleaved(BillingRepository):
    """A repository that runs ``then()`` once, right after its first call of method ``at`` returns."""

    def __init__(self, db, at: str, then) -> None:
        super().__init__(db)
        self._then = then
        original = getattr(self, at)

        def hooked(*args, **kwargs):
            result = original(*args, **kwargs)
            then, self._then = self._then, None
            if then is not None:
                then()
            return result

        setattr(self, at, hooked)
        self.undone: list[str] = []

    def change_markers(self, changes):
        self.undone.extend(c.marker["debit"] for c in changes if c.reverse)
        return super().change_markers(changes)


def _deps(repo, settings, publisher, clock_at) -> BillingDeps:
    return BillingDeps(repo=repo, publisher=publisher, clock=lambda: clock_at,
                       policy=BillingPolicy.from_settings(settings.billing))


def _crash_at(step: str):
    def checkpoint(name: str) -> None:
        if name == step:
            raise Crash(name)
    return checkpoint


@pytest.fixture
def base(db, settings):
    ensure_indexes(db, INDEXES)
    publisher = RecordingPublisher(clock=lambda: T1)
    deps = _deps(BillingRepository(db), settings, publisher, T1)
    service.open_wallet(deps, parse_event(USER_REGISTERED, {"userId": SEED["userId"],
                                                            "registeredAt": "2026-02-20T10:00:00Z"}))
    return deps


def _session():
    return parse_event("SESSION_ENDED", SEED)


def _invoice_stored_but_not_paid(base) -> None:
    """What a delivery that died right after storing the invoice leaves behind."""
    base.checkpoint = _crash_at("invoice_stored")
    with pytest.raises(Crash):
        service.bill_session(base, _session())
    base.checkpoint = lambda name: None


def _assert_paid_once(db, base) -> None:
    invoice = db.invoices.find_one({})
    assert (invoice["status"], invoice["payment"]["at"]) == ("PAID", T1), "the first debit's payment stays"
    debits = list(db.ledger.find({"sessionId": SEED["sessionId"]}))
    assert [(d["amountCents"], d["status"]) for d in debits] == [(-1040, "APPLIED")]
    wallet = db.wallets.find_one({})
    assert (wallet["balanceCents"], wallet["pending"]) == (5000 - 1040, [])
    paid = base.publisher.of_type(PAYMENT_COMPLETED)
    assert paid and all(e == paid[0] for e in paid), "one eventId, one content (the same paidAt)"


def test_a_twin_that_read_the_unpaid_invoice_before_the_other_finished_follows_the_stored_entry(
        db, settings, base):
    _invoice_stored_but_not_paid(base)
    # Twin B reads the invoice (stored, unpaid) and the ledger; twin A then bills to the end; then B goes on.
    late = _Interleaved(db, "invoices_by_id", lambda: service.bill_session(base, _session()))
    outcome = service.bill_session(_deps(late, settings, base.publisher, T2), _session())
    assert outcome["payment"] == "COMPLETED"
    assert late.undone == [], "B found the entry A stored and debited nothing"
    assert len(base.publisher.of_type(PAYMENT_COMPLETED)) == 2, "B republished A's events, unchanged"
    _assert_paid_once(db, base)


def test_a_twin_that_stalled_before_its_debit_undoes_the_debit_nobody_counts(db, settings, base):
    _invoice_stored_but_not_paid(base)
    # Twin B reads the wallet and the ledger (no marker, no entry) and stalls; A bills to the end and pulls
    # its marker; B's guarded debit then passes (nothing left says the session was paid) and must be undone.
    late = _Interleaved(db, "ledger_entries", lambda: service.bill_session(base, _session()))
    outcome = service.bill_session(_deps(late, settings, base.publisher, T2), _session())
    assert outcome["payment"] == "COMPLETED"
    assert len(late.undone) == 1, "B's own debit passed its guard and was undone"
    _assert_paid_once(db, base)


def test_a_late_debit_after_a_rejected_entry_is_undone_and_the_session_stays_unpaid(db, settings, base):
    db.wallets.update_one({"_id": SEED["userId"]}, {"$set": {"balanceCents": 500}})
    _invoice_stored_but_not_paid(base)

    def reject_then_top_up():
        assert service.bill_session(base, _session())["payment"] == "FAILED"  # 5.00 does not cover 10.40
        db.wallets.update_one({"_id": SEED["userId"]}, {"$inc": {"balanceCents": 5000}})  # now it would

    late = _Interleaved(db, "ledger_entries", reject_then_top_up)
    outcome = service.bill_session(_deps(late, settings, base.publisher, T2), _session())

    assert (outcome["status"], outcome["payment"]) == ("OPEN", "FAILED"), "the stored decision is followed"
    assert len(late.undone) == 1
    wallet = db.wallets.find_one({})
    assert (wallet["balanceCents"], wallet["pending"]) == (5500, []), "the late debit was undone"
    [entry] = list(db.ledger.find({"sessionId": SEED["sessionId"]}))
    assert (entry["status"], entry["reason"]) == ("REJECTED", "INSUFFICIENT_FUNDS")
    assert [e["reason"] for e in base.publisher.of_type(PAYMENT_FAILED)] == ["INSUFFICIENT_FUNDS"] * 2
    assert not base.publisher.of_type(PAYMENT_COMPLETED)


def test_a_debit_is_admitted_once_per_entry_and_undone_once(db, base):
    """The wallet's guards themselves: a second move of the same entry changes nothing; so does a second undo."""
    repo = base.repo
    marker = {"entry": "e1", "debit": "d1", "cents": -1000, "at": T1}
    twin = {**marker, "debit": "d2"}
    assert repo.move_balances([Move(SEED["userId"], marker, 0, T1), Move(SEED["userId"], twin, 0, T1)]) == 1
    assert db.wallets.find_one({})["balanceCents"] == 4000
    undo = MarkerChange(SEED["userId"], marker, reverse=True)
    run_concurrently(*[lambda: repo.change_markers([undo])] * 4)
    wallet = db.wallets.find_one({})
    assert (wallet["balanceCents"], wallet["pending"]) == (5000, [])
    big = {"entry": "e2", "debit": "d3", "cents": -5001, "at": T1}
    assert repo.move_balances([Move(SEED["userId"], big, 0, T1)]) == 0, "never below the floor"


def test_a_credit_note_retry_with_another_amount_refunds_what_the_note_says(db, settings, base):
    invoice_id = service.bill_session(base, _session())["invoiceId"]

    class CrashBeforeRefund(BillingRepository):
        def insert_ledger_entries(self, documents):
            if any(d["kind"] == "REFUND" for d in documents):
                raise Crash("killed after the credit moved, before its ledger entry")
            return super().insert_ledger_entries(documents)

    crashing = _deps(CrashBeforeRefund(db), settings, base.publisher, T1)
    with pytest.raises(Crash):
        service.issue_credit_note(crashing, invoice_id, amount=Decimal("5.50"), reason="faulty", key="c1")
    assert db.wallets.find_one({})["pending"], "the credit moved; its marker says so"

    note = service.issue_credit_note(base, invoice_id, amount=Decimal("2.00"), reason="faulty", key="c1")

    assert note["totalCents"] == -550
    refund = db.ledger.find_one({"kind": "REFUND"})
    assert (refund["amountCents"], refund["status"]) == (550, "APPLIED")
    wallet = db.wallets.find_one({})
    assert (wallet["balanceCents"], wallet["pending"]) == (5000 - 1040 + 550, []), "credited once"


def test_a_credit_note_claimed_before_a_crash_is_issued_with_the_claimed_amount(db, settings, base):
    invoice_id = service.bill_session(base, _session())["invoiceId"]

    class CrashBeforeNote(BillingRepository):
        def insert_credit_note(self, document):
            raise Crash("killed after the claim, before the note")

    with pytest.raises(Crash):
        service.issue_credit_note(_deps(CrashBeforeNote(db), settings, base.publisher, T1), invoice_id,
                                  amount=Decimal("4.00"), reason="r", key="k")
    note = service.issue_credit_note(base, invoice_id, amount=Decimal("9.99"), reason="r", key="k")
    assert note["totalCents"] == -400
    assert db.invoice_credits.find_one({})["creditedCents"] == 400
    with pytest.raises(ValidationError):  # 4.00 of 10.40 credited: 7.00 more does not fit
        service.issue_credit_note(base, invoice_id, amount=Decimal("7.00"), reason="r", key="k2")


def test_concurrent_credit_notes_never_exceed_the_invoice_total(db, settings, base):
    invoice_id = service.bill_session(base, _session())["invoiceId"]
    outcomes: list[object] = []

    def other_credit():
        outcomes.append(service.issue_credit_note(base, invoice_id, amount=Decimal("6.00"), reason="b", key="b"))

    # Caller A has read that its note does not exist yet; caller B issues its whole credit right then.
    racing = _deps(_Interleaved(db, "credit_note", other_credit), settings, base.publisher, T1)
    with pytest.raises(ValidationError):
        service.issue_credit_note(racing, invoice_id, amount=Decimal("6.00"), reason="a", key="a")
    assert outcomes[0]["totalCents"] == -600

    def credit(key: str):
        try:
            outcomes.append(service.issue_credit_note(base, invoice_id, amount=Decimal("1.00"), reason="x", key=key))
        except ValidationError as exc:
            outcomes.append(exc)

    run_concurrently(*[lambda k=k: credit(k) for k in "cdefghi"])  # 4.40 left: four of seven fit
    credited = -sum(n["totalCents"] for n in db.credit_notes.find({"invoiceId": invoice_id}))
    assert credited == 600 + 400 <= 1040
    assert sum(isinstance(o, ValidationError) for o in outcomes) == 3
    wallet = db.wallets.find_one({})
    assert (wallet["balanceCents"], wallet["pending"]) == (5000 - 1040 + credited, [])


def test_a_refusal_while_another_attempts_debit_is_in_flight_is_retried_not_stored_as_unpaid(db, base):
    # Another Lambda's debit (a late twin's, which may still be undone) holds the balance down.
    wallet = SEED["userId"]
    db.wallets.update_one({"_id": wallet}, {"$set": {"balanceCents": 100}, "$push": {"pending": {
        "entry": f"{wallet}:another-session", "debit": "d-elsewhere", "cents": -4900, "at": T1}}})
    event = parse_event("SESSION_ENDED", SEED)
    with pytest.raises(TransientError, match="in flight"):
        service.bill_session(base, event)
    entry_id = f"{wallet}:{SEED['sessionId']}"
    assert db.ledger.find_one({"_id": entry_id}) is None, "nothing decided while the other debit may be undone"
    outcome = service.bill_session(base, event, final_attempt=True)
    assert outcome["payment"] == "FAILED"
    assert db.ledger.find_one({"_id": entry_id})["reason"] == "INSUFFICIENT_FUNDS"


def test_a_credit_note_on_an_invoice_still_being_billed_is_retried_not_issued_unrefunded(db, base):
    invoice_id = service.invoice_id_for(SEED["sessionId"])
    db.invoices.insert_one({"_id": invoice_id, "sessionId": SEED["sessionId"], "userId": SEED["userId"],
                            "status": "OPEN", "totalCents": 1040, "currency": "EUR"})  # stored, not settled
    with pytest.raises(TransientError, match="still being settled"):
        service.issue_credit_note(base, invoice_id, amount=Decimal("1.00"), reason="goodwill", key="a")
    assert db.credit_notes.count_documents({}) == 0 and db.invoice_credits.count_documents({}) == 0
