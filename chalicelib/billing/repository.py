"""Billing's data access: tariffs, invoices, invoice numbers, wallets, ledger, credit notes.

Every hot write is keyed by ``_id`` (FerretDB scans for any other filter):
invoice ``_id`` = uuid5(sessionId), number reservation ``_id`` = series key,
ledger entry ``_id`` = ``"{walletId}:{sessionId}"``, wallet ``_id`` = userId.
"Exactly one" comes from unique keys; a ``DuplicateKeyError`` means "already
done" and is answered here, so ``pymongo.errors`` never leave this module.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pymongo import DESCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from chalicelib.store import IndexSpec, translate_errors

TARIFFS = "tariffs"
INVOICES = "invoices"
NUMBERS = "invoice_numbers"
COUNTERS = "counters"
WALLETS = "wallets"
LEDGER = "ledger"
CREDIT_NOTES = "credit_notes"

INDEXES: list[IndexSpec] = [
    IndexSpec(INVOICES, (("sessionId", 1),), unique=True, name="invoice_per_session"),
    IndexSpec(INVOICES, (("number", 1),), unique=True, name="invoice_number"),
    IndexSpec(INVOICES, (("userId", 1), ("issuedAt", -1), ("_id", -1)), name="invoices_by_user"),
    IndexSpec(LEDGER, (("walletId", 1), ("createdAt", 1)), name="ledger_by_wallet"),
    IndexSpec(CREDIT_NOTES, (("invoiceId", 1),), name="credit_notes_by_invoice"),
]


class BillingRepository:
    """All billing reads and writes; each method is one store round trip unless it says otherwise."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- tariffs -----------------------------------------------------------------------
    def tariff_for_station(self, station_id: str) -> dict[str, Any] | None:
        with translate_errors("read tariff"):
            return self.db[TARIFFS].find_one({"_id": station_id})

    def put_tariff(self, station_id: str, document: Mapping[str, Any]) -> None:
        with translate_errors("write tariff"):
            self.db[TARIFFS].replace_one({"_id": station_id}, {**document, "_id": station_id}, upsert=True)

    # -- invoice numbers ---------------------------------------------------------------
    def reserved_number(self, key: str) -> dict[str, Any] | None:
        with translate_errors("read number reservation"):
            return self.db[NUMBERS].find_one({"_id": key})

    def take_number(self, series: str, key: str) -> int:
        """Increment the series counter for ``key`` unless ``key`` took the last number.

        The guard makes a retry right after a crash (counter bumped, reservation
        not yet stored) get the same number back instead of burning another.
        """
        with translate_errors("take invoice number"):
            try:
                doc = self.db[COUNTERS].find_one_and_update(
                    {"_id": series, "lastKey": {"$ne": key}},
                    {"$inc": {"seq": 1}, "$set": {"lastKey": key}},
                    upsert=True, return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:  # the counter exists and its last number is already ours
                doc = self.db[COUNTERS].find_one({"_id": series})
                if doc is None or doc.get("lastKey") != key:
                    raise
        return int(doc["seq"])

    def reserve_number(self, key: str, series: str, seq: int) -> dict[str, Any]:
        """Store ``key`` -> number; if another attempt got there first, return its reservation."""
        doc = {"_id": key, "series": series, "seq": seq}
        with translate_errors("reserve invoice number"):
            try:
                self.db[NUMBERS].insert_one(doc)
                return doc
            except DuplicateKeyError:
                return self.db[NUMBERS].find_one({"_id": key})

    # -- invoices ----------------------------------------------------------------------
    def invoice(self, invoice_id: str) -> dict[str, Any] | None:
        with translate_errors("read invoice"):
            return self.db[INVOICES].find_one({"_id": invoice_id})

    def insert_invoice(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """Insert once; a duplicate (same ``_id`` or ``sessionId``) returns the stored invoice."""
        with translate_errors("insert invoice"):
            try:
                self.db[INVOICES].insert_one(dict(document))
                return dict(document)
            except DuplicateKeyError:
                stored = self.db[INVOICES].find_one({"_id": document["_id"]})
                if stored is None:
                    raise
                return stored

    def settle_invoice(self, invoice_id: str, status: str, payment: Mapping[str, Any]) -> None:
        with translate_errors("settle invoice"):
            self.db[INVOICES].update_one({"_id": invoice_id}, {"$set": {"status": status, "payment": dict(payment)}})

    def mark_published(self, invoice_id: str) -> None:
        with translate_errors("mark invoice events published"):
            self.db[INVOICES].update_one({"_id": invoice_id}, {"$set": {"eventsPublished": True}})

    def invoices_of(self, user_id: str, limit: int, after: tuple[dt.datetime, str] | None) -> list[dict[str, Any]]:
        """The user's invoices, newest first, strictly after the cursor position."""
        query: dict[str, Any] = {"userId": user_id}
        if after is not None:
            issued_at, invoice_id = after
            query["$or"] = [{"issuedAt": {"$lt": issued_at}}, {"issuedAt": issued_at, "_id": {"$lt": invoice_id}}]
        with translate_errors("list invoices"):
            cursor = self.db[INVOICES].find(query).sort([("issuedAt", DESCENDING), ("_id", DESCENDING)]).limit(limit)
            return list(cursor)

    # -- wallets and ledger ------------------------------------------------------------
    def wallet(self, wallet_id: str) -> dict[str, Any] | None:
        with translate_errors("read wallet"):
            return self.db[WALLETS].find_one({"_id": wallet_id})

    def insert_wallet(self, document: Mapping[str, Any]) -> bool:
        """True if this call opened the wallet, False if it was open already."""
        with translate_errors("open wallet"):
            try:
                self.db[WALLETS].insert_one(dict(document))
                return True
            except DuplicateKeyError:
                return False

    def ledger_entry(self, entry_id: str) -> dict[str, Any] | None:
        with translate_errors("read ledger entry"):
            return self.db[LEDGER].find_one({"_id": entry_id})

    def insert_ledger_entry(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """Insert once; a duplicate returns the stored entry (its status tells how far it got)."""
        with translate_errors("insert ledger entry"):
            try:
                self.db[LEDGER].insert_one(dict(document))
                return dict(document)
            except DuplicateKeyError:
                stored = self.db[LEDGER].find_one({"_id": document["_id"]})
                if stored is None:
                    raise
                return stored

    def apply_entry(self, wallet_id: str, entry_id: str, delta_cents: int, floor_cents: int | None,
                    now: dt.datetime) -> bool:
        """Move the balance by ``delta_cents`` once per entry, never below ``floor_cents``.

        The filter is the whole guard: the entry id must not be in ``applied``
        and, for a debit, the balance must cover it. Returns whether this call
        applied it. The marker stays on the wallet for good: removing it would
        let a concurrent duplicate delivery, still holding the entry as
        PENDING, apply it a second time. (~50 bytes per session; a wallet
        reaches MongoDB's 16 MB document limit after ~300k sessions.)
        """
        query: dict[str, Any] = {"_id": wallet_id, "applied": {"$ne": entry_id}}
        if floor_cents is not None and delta_cents < 0:
            query["balanceCents"] = {"$gte": floor_cents - delta_cents}
        with translate_errors("apply ledger entry"):
            result = self.db[WALLETS].update_one(
                query, {"$inc": {"balanceCents": delta_cents}, "$push": {"applied": entry_id},
                        "$set": {"updatedAt": now}},
            )
        return result.modified_count == 1

    def set_entry_status(self, entry_id: str, status: str, reason: str | None = None) -> None:
        update: dict[str, Any] = {"status": status}
        if reason:
            update["reason"] = reason
        with translate_errors("update ledger entry"):
            self.db[LEDGER].update_one({"_id": entry_id}, {"$set": update})

    def ledger_of(self, wallet_id: str) -> list[dict[str, Any]]:
        with translate_errors("read ledger"):
            return list(self.db[LEDGER].find({"walletId": wallet_id}).sort("createdAt", 1))

    # -- credit notes ------------------------------------------------------------------
    def insert_credit_note(self, document: Mapping[str, Any]) -> dict[str, Any]:
        with translate_errors("insert credit note"):
            try:
                self.db[CREDIT_NOTES].insert_one(dict(document))
                return dict(document)
            except DuplicateKeyError:
                stored = self.db[CREDIT_NOTES].find_one({"_id": document["_id"]})
                if stored is None:
                    raise
                return stored

    def credit_notes_of(self, invoice_id: str) -> list[dict[str, Any]]:
        with translate_errors("read credit notes"):
            return list(self.db[CREDIT_NOTES].find({"invoiceId": invoice_id}))
