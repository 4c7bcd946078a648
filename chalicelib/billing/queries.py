"""What billing answers to other domains: its published queries, over its own collections.

Another domain that needs to know how far billing got (the DLQ reconciler and the
replay tool, before they compensate or resend a ``SESSION_ENDED``) calls these
functions and gets typed answers, never billing's documents: the collection, its
fields and how they are written stay billing's to change. Reads only.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymongo.database import Database

from chalicelib.billing.repository import INVOICES
from chalicelib.store import translate_errors


@dataclass(frozen=True)
class InvoiceState:
    """A session's invoice as far as billing has taken it.

    ``events_published``: INVOICE_GENERATED and the payment event were published for
    it, the last step of billing a session; until then a new delivery of the session
    resumes billing from the step it reached and publishes them.
    """

    invoice_id: str
    user_id: str | None
    status: str | None  # OPEN until the payment is settled onto it, then PAID or OPEN
    events_published: bool


def invoice_state(db: Database, session_id: str) -> InvoiceState | None:
    """The invoice of ``session_id`` (``None``: billing has not invoiced it), in one indexed read."""
    with translate_errors("read invoice state"):
        doc = db[INVOICES].find_one({"sessionId": session_id}, {"userId": 1, "status": 1, "eventsPublished": 1})
    if doc is None:
        return None
    return InvoiceState(invoice_id=str(doc["_id"]), user_id=doc.get("userId"), status=doc.get("status"),
                        events_published=doc.get("eventsPublished") is True)
