"""Data access for the DLQ domain: the ``dead_letters`` audit, and a port on how far billing got.

Every record is keyed by a deterministic ``_id`` (a unique ``_id`` is how "handled
once" is enforced, and an ``_id`` lookup uses an index on every server): reconciler
decisions by :func:`chalicelib.dlq.letters.letter_key`, replays by
``replay:<letter key>``. pymongo errors never leave this module.

Billing's data is billing's: what the DLQ needs to know about a session's invoice
comes from billing's published query (:func:`chalicelib.billing.queries.invoice_state`),
never from its collection.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, Protocol

from pymongo import DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from chalicelib.billing.queries import InvoiceState, invoice_state
from chalicelib.store import IndexSpec
from chalicelib.store.errors import translate_errors

DEAD_LETTERS = "dead_letters"

INDEXES: list[IndexSpec] = [
    IndexSpec(DEAD_LETTERS, (("queue", 1), ("decidedAt", -1)), name="dead_letters_queue_time"),
]

PENDING = "pending"
DONE = "done"


class InvoiceLookup(Protocol):
    """Has the effect of a SESSION_ENDED already been recorded, and how completely?

    Billing stores the invoice, debits, settles, publishes INVOICE_GENERATED / PAYMENT_*
    and only then records the events as published; ``bill_session`` resumes from any of
    those steps, so a SESSION_ENDED whose invoice's events are not yet published must be
    delivered again (never compensated with BILLING_FAILED: the user may have paid).
    """

    def invoice_state(self, session_id: str) -> InvoiceState | None:
        """``None``: no invoice yet; else how far billing took it."""
        ...


class BillingInvoiceLookup:
    """:class:`InvoiceLookup` over billing's published query, on the database the Lambda already holds."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def invoice_state(self, session_id: str) -> InvoiceState | None:
        return invoice_state(self.db, session_id)


def invoice_for(lookup: InvoiceLookup, session_id: str, user_id: str | None) -> InvoiceState | None:
    """The session's invoice, when it can be this letter's.

    An invoice of another user under the same sessionId says nothing about this
    session (the producer re-used the id; billing refuses it as ``SessionReused``):
    treating it as "already billed" would drop the letter without anyone hearing of it.
    """
    state = lookup.invoice_state(session_id)
    if state is not None and state.user_id and user_id and state.user_id != user_id:
        return None
    return state


class DeadLetterRepository:
    """The audit trail: one document per decision and per replay attempt."""

    def __init__(self, db: Database) -> None:
        self.collection = db[DEAD_LETTERS]

    def claim(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """Insert ``record`` as pending; return the existing record instead when its ``_id`` is taken."""
        doc = dict(record, status=PENDING)
        with translate_errors("claim dead letter"):
            try:
                self.collection.insert_one(doc)
                return None
            except DuplicateKeyError:
                return self.collection.find_one({"_id": record["_id"]}) or {"_id": record["_id"], "status": DONE}

    def complete(self, key: str, fields: dict[str, Any]) -> None:
        with translate_errors("complete dead letter"):
            self.collection.update_one({"_id": key}, {"$set": dict(fields, status=DONE)})

    def get(self, key: str) -> dict[str, Any] | None:
        with translate_errors("read dead letter"):
            return self.collection.find_one({"_id": key})

    def find(self, *, queue: str | None = None, action: str | None = None, event_type: str | None = None,
             newer_than: dt.datetime | None = None, older_than: dt.datetime | None = None,
             limit: int = 100) -> Iterator[dict[str, Any]]:
        """Audit records, newest first."""
        query: dict[str, Any] = {key: value for key, value in (
            ("queue", queue), ("action", action), ("eventType", event_type)) if value}
        when = {op: value for op, value in (("$gte", newer_than), ("$lte", older_than)) if value}
        if when:
            query["decidedAt"] = when
        with translate_errors("list dead letters"):
            yield from self.collection.find(query).sort([("decidedAt", DESCENDING), ("_id", DESCENDING)]).limit(limit)

    def parked(self, queue: str, limit: int) -> list[dict[str, Any]]:
        """Letters the reconciler gave up on and nobody has replayed yet (replay candidates)."""
        with translate_errors("list parked dead letters"):
            cursor = self.collection.find({"queue": queue, "kind": "decision", "parked": True,
                                           "replayedAt": None}).sort("decidedAt", 1).limit(limit)
            return list(cursor)

    def mark_replayed(self, key: str, when: dt.datetime, replay_key: str) -> None:
        with translate_errors("mark dead letter replayed"):
            self.collection.update_one({"_id": key}, {"$set": {"replayedAt": when, "replayKey": replay_key}})
