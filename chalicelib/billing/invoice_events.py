"""A settled invoice's events: built from the stored invoice only, published, then the invoice marked.

The events are published after the invoice and its payment are stored, and only
from what is stored: ids ``derived_event_id(type, sessionId)``, times ``issuedAt`` and
``payment.at``. So a republish after a crash between publishing and marking is the
very same event, and consumers deduplicate by ``eventId``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.billing.policy import BillingDeps, ms
from chalicelib.billing.session_state import COMPLETED, SessionBill, active
from chalicelib.billing.tariffs import from_cents
from chalicelib.contracts.events import (
    INVOICE_GENERATED,
    PAYMENT_COMPLETED,
    PAYMENT_FAILED,
    derived_event_id,
)
from chalicelib.events.publisher import OutgoingEvent


def events_for(invoice: Mapping[str, Any]) -> list[OutgoingEvent]:
    """INVOICE_GENERATED, then PAYMENT_COMPLETED or PAYMENT_FAILED, from stored state alone."""
    session_id = invoice["sessionId"]
    issued_at = ms(invoice["issuedAt"])
    total = from_cents(invoice["totalCents"])
    common = {"invoiceId": invoice["_id"], "sessionId": session_id, "userId": invoice["userId"],
              "currency": invoice["currency"]}
    generated = OutgoingEvent(
        INVOICE_GENERATED,
        {**common, "invoiceNumber": invoice["number"], "stationId": invoice["stationId"],
         "net": from_cents(invoice["netCents"]), "vat": from_cents(invoice["vatCents"]), "total": total,
         "status": invoice["status"], "issuedAt": issued_at},
        event_id=derived_event_id(INVOICE_GENERATED, session_id), idempotency_key=session_id,
        occurred_at=issued_at,
    )
    payment = invoice["payment"]
    at = ms(payment["at"])
    if payment["outcome"] == COMPLETED:
        second = OutgoingEvent(PAYMENT_COMPLETED, {**common, "amount": total, "paidAt": at},
                               event_id=derived_event_id(PAYMENT_COMPLETED, session_id),
                               idempotency_key=session_id, occurred_at=at)
    else:
        second = OutgoingEvent(PAYMENT_FAILED, {**common, "amount": total, "reason": payment["reason"],
                                                "failedAt": at},
                               event_id=derived_event_id(PAYMENT_FAILED, session_id),
                               idempotency_key=session_id, occurred_at=at)
    return [generated, second]


def publish(deps: BillingDeps, bills: list[SessionBill]) -> None:
    """Publish each settled, not yet announced invoice's events, with its delivery's correlation id.

    A session whose events cannot be published fails alone (it is retried); the
    others of the batch go on.
    """
    sent = 0
    for bill in active(bills):
        if not bill.settled or bill.announced:
            continue
        try:
            deps.publisher.publish(events_for(bill.invoice), correlation_id=bill.request.correlation_id)
        except Exception as exc:  # noqa: BLE001 - this session's failure; run_batch classifies it
            bill.error = exc
            continue
        bill.published = True
        sent += 1
    if sent:
        deps.checkpoint("events_published")


def mark_published(deps: BillingDeps, bills: list[SessionBill]) -> None:
    """``eventsPublished`` on every invoice whose events went out, in one update."""
    done = [bill for bill in active(bills) if bill.published]
    if not done:
        return
    deps.repo.mark_published([bill.invoice_id for bill in done])
    for bill in done:
        bill.invoice = {**bill.invoice, "eventsPublished": True}
    deps.checkpoint("invoice_marked")
