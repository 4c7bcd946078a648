"""Billing's data access: tariffs, invoice numbers, invoices, wallets, ledger, credit notes.

What makes billing exactly-once lives in the filters and unique keys written here, all
of it single-document MongoDB semantics (no transactions):

- one invoice per session: ``_id`` = uuid5(sessionId) and a unique index on ``sessionId``;
- one ledger entry per (wallet, session): ``_id = "<walletId>:<sessionId>"``; the entry
  stored first is the session's payment decision;
- a balance move changes the balance and records a *marker* of itself in the same
  update (``wallet.pending``), guarded by "no marker of this entry yet" and, for a
  debit, "the balance covers it"; the marker is pulled once the entry is stored;
- invoice numbers come from a per-year counter (``$inc``).

Writes to invoices and ledger filter by ``_id`` alone (every writer writes the same
values, so no guard is needed; the embedded server also scans any other filter), and the
guarded updates are on wallets. A method is one round trip (one bulk call per step of a
batch) unless it says otherwise. ``pymongo.errors`` never leave this module.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import DESCENDING, ReturnDocument, UpdateOne
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from chalicelib.store import IndexSpec, TransientStoreError, translate_errors
from chalicelib.store.batches import write_unordered

TARIFFS = "tariffs"
INVOICES = "invoices"
COUNTERS = "counters"
WALLETS = "wallets"
LEDGER = "ledger"
CREDIT_NOTES = "credit_notes"
INVOICE_CREDITS = "invoice_credits"

INDEXES: list[IndexSpec] = [
    IndexSpec(INVOICES, (("sessionId", 1),), unique=True, name="invoice_per_session"),
    IndexSpec(INVOICES, (("number", 1),), unique=True, name="invoice_number"),
    IndexSpec(INVOICES, (("userId", 1), ("issuedAt", -1), ("_id", -1)), name="invoices_by_user"),
    IndexSpec(LEDGER, (("walletId", 1), ("createdAt", 1)), name="ledger_by_wallet"),
    IndexSpec(CREDIT_NOTES, (("invoiceId", 1),), name="credit_notes_by_invoice"),
]


@dataclass(frozen=True)
class Move:
    """A balance move of ``marker["cents"]`` on ``wallet_id``; ``floor_cents`` None = no floor (a refund)."""

    wallet_id: str
    marker: Mapping[str, Any]
    floor_cents: int | None
    now: dt.datetime


@dataclass(frozen=True)
class Settlement:
    """An invoice's status and payment as its stored ledger entry decides them."""

    invoice_id: str
    status: str
    payment: Mapping[str, Any]


@dataclass(frozen=True)
class MarkerChange:
    """``reverse`` False: the move is recorded, drop its marker; True: undo the move and drop it."""

    wallet_id: str
    marker: Mapping[str, Any]
    reverse: bool


def _marker_filter(marker: Mapping[str, Any]) -> dict[str, Any]:
    return {"entry": marker["entry"], "debit": marker["debit"]}


class BillingRepository:
    """All billing reads and writes."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- tariffs -----------------------------------------------------------------------
    def tariffs(self, station_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stations' own tariffs (absent = the default applies), in one read."""
        with translate_errors("read tariffs"):
            return {doc["_id"]: doc for doc in self.db[TARIFFS].find({"_id": {"$in": sorted(set(station_ids))}})}

    def put_tariff(self, station_id: str, document: Mapping[str, Any]) -> None:
        with translate_errors("write tariff"):
            self.db[TARIFFS].replace_one({"_id": station_id}, {**document, "_id": station_id}, upsert=True)

    # -- numbers -----------------------------------------------------------------------
    def take_numbers(self, series: str, key: str, count: int, tries: int = 3) -> int:
        """Reserve ``count`` consecutive numbers of ``series`` for ``key``; return the last one.

        One atomic ``$inc`` on the series counter. The counter remembers the last
        ``key``: the same key again (a retry right after a crash, before anyone else
        took a number) matches no document, so the upsert's insert is refused as a
        duplicate ``_id`` and the block taken last time is returned instead of a new
        one. Any other retry takes a new block: numbers can have gaps, never duplicates.
        """
        with translate_errors("take numbers"):
            for _ in range(tries):
                try:
                    doc = self.db[COUNTERS].find_one_and_update(
                        {"_id": series, "lastKey": {"$ne": key}},
                        {"$inc": {"seq": count}, "$set": {"lastKey": key, "lastCount": count}},
                        projection={"seq": 1}, upsert=True, return_document=ReturnDocument.AFTER)
                    return int(doc["seq"])
                except DuplicateKeyError:
                    doc = self.db[COUNTERS].find_one({"_id": series})
                    if doc is not None and doc.get("lastKey") == key and doc.get("lastCount") == count:
                        return int(doc["seq"])
                    # else two first upserts of a new series raced and the other created it: go again
        raise TransientStoreError(f"no numbers taken from {series} after {tries} tries")

    # -- invoices ----------------------------------------------------------------------
    def invoice(self, invoice_id: str) -> dict[str, Any] | None:
        with translate_errors("read invoice"):
            return self.db[INVOICES].find_one({"_id": invoice_id})

    def invoices_by_id(self, invoice_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return self._by_ids(INVOICES, invoice_ids, "read invoices")

    def insert_invoices(self, documents: Sequence[Mapping[str, Any]]) -> list[int]:
        """Insert every invoice not stored yet; returns the indexes refused as duplicates."""
        return self._insert_new(INVOICES, documents, "insert invoices")

    def settle_invoices(self, settlements: Sequence[Settlement]) -> None:
        """Copy each session's decided payment onto its invoice.

        The filter is the ``_id`` alone on purpose: the values come from the session's
        one stored ledger entry, so every writer writes the same, and no guard is
        needed. (mongo-java-server uses an index only for a filter whose fields are
        exactly an index's fields; a guard beside ``_id`` would scan the collection.)
        """
        operations = [UpdateOne({"_id": s.invoice_id}, {"$set": {"status": s.status, "payment": dict(s.payment)}})
                      for s in settlements]
        if operations:
            write_unordered(self.db[INVOICES], operations, "settle invoices")

    def mark_published(self, invoice_ids: Sequence[str]) -> None:
        """``eventsPublished`` on these invoices; setting it twice is setting it once."""
        if invoice_ids:
            with translate_errors("mark invoice events published"):
                self.db[INVOICES].update_many({"_id": {"$in": list(invoice_ids)}}, {"$set": {"eventsPublished": True}})

    def invoices_of(self, user_id: str, limit: int, after: tuple[dt.datetime, str] | None) -> list[dict[str, Any]]:
        """The user's invoices, newest first, strictly after the cursor position."""
        query: dict[str, Any] = {"userId": user_id}
        if after is not None:
            issued_at, invoice_id = after
            query["$or"] = [{"issuedAt": {"$lt": issued_at}}, {"issuedAt": issued_at, "_id": {"$lt": invoice_id}}]
        with translate_errors("list invoices"):
            cursor = self.db[INVOICES].find(query).sort([("issuedAt", DESCENDING), ("_id", DESCENDING)]).limit(limit)
            return list(cursor)

    # -- wallets -----------------------------------------------------------------------
    def wallet(self, wallet_id: str) -> dict[str, Any] | None:
        with translate_errors("read wallet"):
            return self.db[WALLETS].find_one({"_id": wallet_id})

    def wallets(self, wallet_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Balance and pending markers of each wallet (absent = not open)."""
        with translate_errors("read wallets"):
            found = self.db[WALLETS].find({"_id": {"$in": sorted(set(wallet_ids))}}, {"balanceCents": 1, "pending": 1})
            return {doc["_id"]: doc for doc in found}

    def insert_wallet(self, document: Mapping[str, Any]) -> bool:
        """True if this call opened the wallet, False if it was open already."""
        with translate_errors("open wallet"):
            try:
                self.db[WALLETS].insert_one(dict(document))
                return True
            except DuplicateKeyError:
                return False

    def move_balances(self, moves: Sequence[Move]) -> int:
        """Apply each move once, never below its floor; returns how many were applied.

        Balance and marker change in one single-document update whose filter is the
        whole guard: no marker of this entry yet (so a second attempt changes nothing)
        and, for a debit, a balance that covers it.
        """
        if not moves:
            return 0
        return int(write_unordered(self.db[WALLETS], [_move_operation(m) for m in moves], "move balances")[0]
                   .get("nModified", 0))

    def change_markers(self, changes: Sequence[MarkerChange]) -> None:
        """Drop recorded moves' markers; undo and drop surplus ones (each only while its marker is there)."""
        operations = []
        for change in changes:
            marker = _marker_filter(change.marker)
            if change.reverse:
                operations.append(UpdateOne({"_id": change.wallet_id, "pending": {"$elemMatch": marker}},
                                            {"$inc": {"balanceCents": -int(change.marker["cents"])},
                                             "$pull": {"pending": marker}}))
            else:
                operations.append(UpdateOne({"_id": change.wallet_id}, {"$pull": {"pending": marker}}))
        if operations:
            write_unordered(self.db[WALLETS], operations, "clear pending markers")

    # -- ledger ------------------------------------------------------------------------
    def ledger_entry(self, entry_id: str) -> dict[str, Any] | None:
        with translate_errors("read ledger entry"):
            return self.db[LEDGER].find_one({"_id": entry_id})

    def ledger_entries(self, entry_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return self._by_ids(LEDGER, entry_ids, "read ledger entries")

    def insert_ledger_entries(self, documents: Sequence[Mapping[str, Any]]) -> list[int]:
        """Insert the entries not stored yet; returns the indexes that were already there."""
        return self._insert_new(LEDGER, documents, "insert ledger entries")

    # -- shared by the collections whose documents a batch reads and inserts by _id ------
    def _by_ids(self, collection: str, ids: Iterable[str], what: str) -> dict[str, dict[str, Any]]:
        """One ``$in`` read for a whole batch, by ``_id``."""
        with translate_errors(what):
            return {doc["_id"]: doc for doc in self.db[collection].find({"_id": {"$in": list(ids)}})}

    def _insert_new(self, collection: str, documents: Sequence[Mapping[str, Any]], what: str) -> list[int]:
        """One unordered insert; the unique ``_id`` refuses what another delivery stored first."""
        if not documents:
            return []
        return write_unordered(self.db[collection], [dict(d) for d in documents], what, inserts=True)[1]

    def ledger_of(self, wallet_id: str) -> list[dict[str, Any]]:
        with translate_errors("read ledger"):
            return list(self.db[LEDGER].find({"walletId": wallet_id}).sort("createdAt", 1))

    # -- credit notes ------------------------------------------------------------------
    def claim_credit(self, invoice_id: str, note_id: str, cents: int, total_cents: int) -> int | None:
        """Count ``cents`` against the invoice's creditable total once per note; the cents claimed, or None.

        One document per invoice holds the credited sum and the note ids; the filter is
        the guard (note not claimed yet, room left), so concurrent notes never exceed the
        total. An upsert whose filter fails on an existing document is refused as a
        duplicate ``_id``: then the note was claimed before (its cents are returned) or
        there is no room (None).
        """
        query = {"_id": invoice_id, "notes.id": {"$ne": note_id}, "creditedCents": {"$lte": total_cents - cents}}
        update = {"$inc": {"creditedCents": cents}, "$push": {"notes": {"id": note_id, "cents": cents}}}
        with translate_errors("claim credit"):
            if 0 < cents <= total_cents:  # else only an earlier claim of this note can answer
                try:
                    self.db[INVOICE_CREDITS].update_one(query, update, upsert=True)
                    return cents
                except DuplicateKeyError:  # MongoDB: two first notes upserted at once; retry the guard on the document
                    # (the embedded server serialises the two upserts, so this path is not reproducible there)
                    if self.db[INVOICE_CREDITS].update_one(query, update).modified_count:
                        return cents
            doc = self.db[INVOICE_CREDITS].find_one({"_id": invoice_id}) or {}
        return next((int(n["cents"]) for n in doc.get("notes", []) if n["id"] == note_id), None)

    def credit_note(self, note_id: str) -> dict[str, Any] | None:
        with translate_errors("read credit note"):
            return self.db[CREDIT_NOTES].find_one({"_id": note_id})

    def insert_credit_note(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """Insert once; a duplicate returns the stored note."""
        with translate_errors("insert credit note"):
            try:
                self.db[CREDIT_NOTES].insert_one(dict(document))
                return dict(document)
            except DuplicateKeyError:
                return self.db[CREDIT_NOTES].find_one({"_id": document["_id"]}) or dict(document)

    def credit_notes_of(self, invoice_id: str) -> list[dict[str, Any]]:
        with translate_errors("read credit notes"):
            return list(self.db[CREDIT_NOTES].find({"invoiceId": invoice_id}))


def _move_operation(move: Move) -> UpdateOne:
    query: dict[str, Any] = {"_id": move.wallet_id, "pending.entry": {"$ne": move.marker["entry"]}}
    cents = int(move.marker["cents"])
    if move.floor_cents is not None and cents < 0:
        query["balanceCents"] = {"$gte": move.floor_cents - cents}
    return UpdateOne(query, {"$inc": {"balanceCents": cents}, "$push": {"pending": dict(move.marker)},
                             "$set": {"updatedAt": move.now}})
