"""Data access for the DLQ domain: the ``dead_letters`` audit and a read port on invoices.

Every record is keyed by a deterministic ``_id`` (a unique ``_id`` is how "handled
once" is enforced, and an ``_id`` lookup uses an index on every server): reconciler
decisions by :func:`chalicelib.dlq.letters.letter_key`, replays by
``replay:<letter key>``. pymongo errors never leave this module.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, Protocol

from pymongo import DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from chalicelib.store import IndexSpec
from chalicelib.store.errors import translate_errors

DEAD_LETTERS = "dead_letters"
INVOICES = "invoices"  # owned by billing; read only here, by ``sessionId``

INDEXES: list[IndexSpec] = [
    IndexSpec(DEAD_LETTERS, (("queue", 1), ("decidedAt", -1)), name="dead_letters_queue_time"),
]

PENDING = "pending"
DONE = "done"


# How far billing got with a session, as its invoice records it (``None``: no invoice yet).
# Billing stores the invoice, debits, settles, publishes INVOICE_GENERATED / PAYMENT_*,
# and only then sets ``eventsPublished`` on the invoice; ``bill_session`` resumes from
# any of those steps, so a SESSION_ENDED whose invoice is not yet published must be
# delivered again (never compensated with BILLING_FAILED: the user may have paid).
EVENTS_PENDING = "events-pending"
EVENTS_PUBLISHED = "events-published"


class InvoiceLookup(Protocol):
    """Has the effect of a SESSION_ENDED already been recorded, and how completely?"""

    def invoice_state(self, session_id: str) -> str | None:
        """``None`` (no invoice), ``EVENTS_PENDING`` or ``EVENTS_PUBLISHED``."""
        ...


class MongoInvoiceLookup:
    """Reads billing's ``invoices`` collection by ``sessionId`` (unique there, so one small read)."""

    def __init__(self, db: Database) -> None:
        self.collection = db[INVOICES]

    def invoice_state(self, session_id: str) -> str | None:
        with translate_errors("read invoices"):
            invoice = self.collection.find_one({"sessionId": session_id}, {"_id": 1, "eventsPublished": 1})
        if invoice is None:
            return None
        return EVENTS_PUBLISHED if invoice.get("eventsPublished") is True else EVENTS_PENDING


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
        query: dict[str, Any] = {}
        if queue:
            query["queue"] = queue
        if action:
            query["action"] = action
        if event_type:
            query["eventType"] = event_type
        when: dict[str, Any] = {}
        if newer_than:
            when["$gte"] = newer_than
        if older_than:
            when["$lte"] = older_than
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
