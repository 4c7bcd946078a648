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

from chalicelib.store import IndexSpec, TransientStoreError, translate_errors

TARIFFS = "tariffs"
INVOICES = "invoices"
NUMBERS = "invoice_numbers"
COUNTERS = "counters"
CLAIMS = "number_claims"
LOCKS = "locks"
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


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


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

    def take_number(self, series: str, key: str, max_tries: int = 200) -> int:
        """Claim the next free number of ``series`` for ``key`` by a unique ``_id`` insert.

        FerretDB v1 does not apply ``$inc``/``findAndModify`` atomically under
        concurrency (measured: 8 threads got 1,1,2,2,2,2,2,3), but a unique ``_id``
        insert is decided by SQLite's primary key, on MongoDB too: so a number is
        taken by inserting ``"{series}:{n}"``; a duplicate means "taken, try n+1"
        unless the claim is ``key``'s own from a crashed attempt, which is reused.
        The counter document is only a hint of where to start probing.
        """
        with translate_errors("take invoice number"):
            hint = self.db[COUNTERS].find_one({"_id": series})
            number = int(hint["seq"]) + 1 if hint else 1
            for _ in range(max_tries):
                claim_id = f"{series}:{number:09d}"
                try:
                    self.db[CLAIMS].insert_one({"_id": claim_id, "series": series, "seq": number, "key": key})
                    return number
                except DuplicateKeyError:
                    claim = self.db[CLAIMS].find_one({"_id": claim_id})
                    if claim is not None and claim.get("key") == key:
                        return number
                    number += 1
        raise TransientStoreError(f"no free number in {series} after {max_tries} tries (contention)")

    def advance_hint(self, series: str, seq: int) -> None:
        """Move the counter hint forward (``$max``; a lost update only costs a few extra probes)."""
        with translate_errors("advance number hint"):
            try:
                self.db[COUNTERS].update_one({"_id": series}, {"$max": {"seq": seq}}, upsert=True)
            except DuplicateKeyError:  # two first upserts raced; the other one created it
                self.db[COUNTERS].update_one({"_id": series}, {"$max": {"seq": seq}})

    # -- per-wallet lease lock ---------------------------------------------------------
    def acquire_lock(self, name: str, owner: str, now: dt.datetime, lease_seconds: int) -> bool:
        """Take the lock ``name`` by a unique insert; steal it only when its lease has expired.

        Needed because FerretDB v1 loses concurrent updates to one document (8 guarded
        ``$inc`` of -1000 on 5000 left 3000 with 8 reported modified); under the lock
        each wallet has a single writer, on MongoDB and FerretDB alike.
        """
        doc = {"_id": name, "owner": owner, "expiresAt": now + dt.timedelta(seconds=lease_seconds)}
        with translate_errors("acquire lock"):
            try:
                self.db[LOCKS].insert_one(doc)
                return True
            except DuplicateKeyError:
                held = self.db[LOCKS].find_one({"_id": name})
                if held is None or _aware(held["expiresAt"]) > now:
                    return False
                self.db[LOCKS].delete_one({"_id": name, "owner": held["owner"]})
                try:
                    self.db[LOCKS].insert_one(doc)
                    return True
                except DuplicateKeyError:
                    return False

    def release_lock(self, name: str, owner: str) -> None:
        with translate_errors("release lock"):
            self.db[LOCKS].delete_one({"_id": name, "owner": owner})

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
        """Record the payment. The caller holds the invoice's lease and has read no payment under it.

        The filter is the ``_id`` alone on purpose: FerretDB pushes down only a
        filter that is exactly ``{"_id": <string>}``; a guard beside it (``payment:
        {$exists: false}``) makes every settle scan the whole invoices collection,
        and billing slows down as the collection grows. The lease is the guard.
        """
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
                    now: dt.datetime) -> list[str] | None:
        """Move the balance by ``delta_cents`` once per entry, never below ``floor_cents``.

        The filter is the whole guard: the entry id must not be in ``applied``
        and, for a debit, the balance must cover it. The id goes into
        ``applied`` in the same single-document update as the ``$inc``, so
        "the entry is in ``applied``" means "its amount is in the balance" even
        if the caller dies before settling the ledger entry. Returns the
        wallet's ``applied`` list after this call applied it, or None if it did
        not (already applied, or not covered). The list is kept short by
        :meth:`trim_applied`.
        """
        query: dict[str, Any] = {"_id": wallet_id, "applied": {"$ne": entry_id}}
        if floor_cents is not None and delta_cents < 0:
            query["balanceCents"] = {"$gte": floor_cents - delta_cents}
        with translate_errors("apply ledger entry"):
            wallet = self.db[WALLETS].find_one_and_update(
                query, {"$inc": {"balanceCents": delta_cents}, "$push": {"applied": entry_id},
                        "$set": {"updatedAt": now}},
                return_document=ReturnDocument.AFTER,  # no projection: FerretDB 1.24 lacks findAndModify "fields"
            )
        return None if wallet is None else list(wallet.get("applied") or [])

    def settle_for_eviction(self, entry_ids: list[str], now: dt.datetime) -> dict[str, dt.datetime]:
        """For ids about to leave ``wallet.applied``: when each was settled; a PENDING one is settled now.

        An entry still PENDING while its id is in ``applied`` was applied by an
        attempt that died before settling it, so APPLIED is its true status.
        Entries settled before ``settledAt`` existed count from ``createdAt``.
        One ``$in`` read and at most one ``$in`` update (an index lookup on
        MongoDB; a scan of the ledger on FerretDB). Normally once per
        ``APPLIED_WINDOW`` applies of a wallet; on every apply while a wallet
        holds more than twice that many ids none of which is old enough to leave
        (over ~200 sessions in an hour).
        """
        with translate_errors("read entries to evict"):
            found = list(self.db[LEDGER].find({"_id": {"$in": entry_ids}},
                                              {"status": 1, "settledAt": 1, "createdAt": 1}))
        pending = [e["_id"] for e in found if e.get("status") == "PENDING"]
        if pending:
            with translate_errors("settle entries to evict"):
                self.db[LEDGER].update_many({"_id": {"$in": pending}, "status": "PENDING"},
                                            {"$set": {"status": "APPLIED", "settledAt": now}})
        settled = {e["_id"]: _aware(e.get("settledAt") or e["createdAt"]) for e in found}
        settled.update({entry_id: now for entry_id in pending})
        return settled

    def evict_applied(self, wallet_id: str, entry_ids: list[str]) -> None:
        """Drop ids from ``wallet.applied`` (see ``service._keep_applied_short`` for when that is safe)."""
        if not entry_ids:
            return
        with translate_errors("evict applied entries"):
            # $pullAll, not $pull with $in: FerretDB 1.24 accepts the latter and silently removes nothing.
            self.db[WALLETS].update_one({"_id": wallet_id}, {"$pullAll": {"applied": entry_ids}})

    def set_entry_status(self, entry_id: str, status: str, reason: str | None = None,
                         now: dt.datetime | None = None) -> None:
        """Settle an entry. The caller holds the wallet's lease and read the entry PENDING under it.

        ``_id``-only filter for the reason given in :meth:`settle_invoice`.
        """
        update: dict[str, Any] = {"status": status}
        if now is not None:
            update["settledAt"] = now
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
