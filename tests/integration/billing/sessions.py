"""The seed session and what billing it once must leave behind, shared by the billing service tests."""

from __future__ import annotations

import datetime as dt

from chalicelib.billing import service
from chalicelib.contracts.events import (
    INVOICE_GENERATED,
    PAYMENT_COMPLETED,
    USER_REGISTERED,
    derived_event_id,
    parse_event,
)

SEED = {"eventType": "SESSION_ENDED", "sessionId": "6fe27f6e-ff2d-4dda-9f86-3de70e1a4bbf",
        "userId": "0b1732fa-631a-4952-b6d6-2d586ed9dbf8", "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f",
        "energyKwh": 22.4, "durationMinutes": 58, "endedAt": "2026-02-21T14:31:00Z"}
NOW = dt.datetime(2026, 2, 21, 14, 31, 5, 123456, tzinfo=dt.UTC)


class Crash(Exception):
    """Stands in for the Lambda being killed."""


def session(**changes) -> object:
    return parse_event("SESSION_ENDED", {**SEED, **changes})


def open_wallet(deps, user_id=SEED["userId"]):
    return service.open_wallet(deps, parse_event(USER_REGISTERED, {"userId": user_id,
                                                                   "registeredAt": "2026-02-20T10:00:00Z"}))


def assert_billed_once(db, deps, balance_cents=5000 - 1040):
    invoices = list(db.invoices.find({"sessionId": SEED["sessionId"]}))
    assert len(invoices) == 1
    invoice = invoices[0]
    assert (invoice["status"], invoice["totalCents"], invoice["number"]) == ("PAID", 1040, "INV-2026-000001")
    debits = list(db.ledger.find({"sessionId": SEED["sessionId"]}))
    assert [(d["amountCents"], d["status"]) for d in debits] == [(-1040, "APPLIED")]
    assert invoice["payment"]["debitId"] == debits[0]["debitId"], "the invoice names the debit the ledger counts"
    wallet = db.wallets.find_one({"_id": SEED["userId"]})
    assert wallet["balanceCents"] == balance_cents
    assert wallet["pending"] == [], "no debit left in flight"
    applied = sum(e["amountCents"] for e in db.ledger.find({"walletId": SEED["userId"], "status": "APPLIED"}))
    assert applied == wallet["balanceCents"], "the balance must equal the sum of applied ledger entries"
    published = deps.publisher.published
    ids = {(e["eventType"], e["eventId"]) for e in published}
    assert ids == {(INVOICE_GENERATED, derived_event_id(INVOICE_GENERATED, SEED["sessionId"])),
                   (PAYMENT_COMPLETED, derived_event_id(PAYMENT_COMPLETED, SEED["sessionId"]))}
    by_id: dict[str, dict] = {}
    for event in published:  # a duplicate is allowed only as the very same event
        assert by_id.setdefault(event["eventId"], event) == event
