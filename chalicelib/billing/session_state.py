"""What one session carries through the billing steps, and the documents derived from it.

The store is the state: a ``SessionBill`` holds only what this attempt has read or
written, so a crash loses nothing a redelivery cannot read back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from chalicelib.billing.policy import invoice_id_for, ledger_entry_id
from chalicelib.contracts.events import Event

COMPLETED = "COMPLETED"
FAILED = "FAILED"
APPLIED = "APPLIED"
REJECTED = "REJECTED"
INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"


@dataclass(frozen=True)
class SessionRequest:
    """One delivery of SESSION_ENDED: ``final_attempt`` when nothing will deliver it again (its last receive
    of the last re-drive): only then is a missing wallet an unknown user."""

    event: Event
    final_attempt: bool = False
    correlation_id: str | None = None


@dataclass
class SessionBill:
    """One distinct session of a batch on its way through the steps; ``error`` set = it left them."""

    request: SessionRequest
    invoice: dict[str, Any] | None = None
    fresh: bool = False  # this attempt stored the invoice
    wallet_open: bool | None = None  # None: not read by this attempt
    marker: dict[str, Any] | None = None  # the wallet's marker of this session's entry, as seen or pushed
    entry: dict[str, Any] | None = None  # the ledger entry: as this attempt proposes it, then as stored
    entry_stored: bool = False
    published: bool = False
    error: Exception | None = None

    @property
    def session(self) -> Mapping[str, Any]:
        return self.request.event.payload

    @property
    def session_id(self) -> str:
        return self.session["sessionId"]

    @property
    def user_id(self) -> str:
        """Also the wallet's id: one wallet per user."""
        return self.session["userId"]

    @cached_property
    def invoice_id(self) -> str:
        return invoice_id_for(self.session_id)

    @cached_property
    def entry_id(self) -> str:
        return ledger_entry_id(self.user_id, self.session_id)

    @property
    def settled(self) -> bool:
        return bool(self.invoice and self.invoice.get("payment"))

    @property
    def announced(self) -> bool:
        return bool(self.invoice and self.invoice.get("eventsPublished"))


def active(bills: Iterable[SessionBill]) -> list[SessionBill]:
    return [bill for bill in bills if bill.error is None]


def marker_of(wallet: Mapping[str, Any] | None, entry_id: str) -> dict[str, Any] | None:
    """The wallet's marker of ``entry_id``: its guard admits one at a time, so there is at most one."""
    return next((dict(m) for m in (wallet or {}).get("pending") or [] if m.get("entry") == entry_id), None)


def applied_entry(bill: SessionBill, marker: Mapping[str, Any]) -> dict[str, Any]:
    """The ledger entry that counts the debit ``marker`` stands for (its time is the debit's)."""
    return {**_entry(bill), "status": APPLIED, "debitId": marker["debit"], "createdAt": marker["at"]}


def rejected_entry(bill: SessionBill, reason: str, at: dt.datetime) -> dict[str, Any]:
    """The ledger entry that says no debit counts for this session, and why."""
    return {**_entry(bill), "status": REJECTED, "reason": reason, "createdAt": at}


def _entry(bill: SessionBill) -> dict[str, Any]:
    invoice = bill.invoice
    return {"_id": bill.entry_id, "walletId": bill.user_id, "kind": "DEBIT", "sessionId": bill.session_id,
            "invoiceId": invoice["_id"], "amountCents": -invoice["totalCents"], "currency": invoice["currency"]}


def payment_of(entry: Mapping[str, Any], invoice: Mapping[str, Any]) -> dict[str, Any]:
    """The invoice's payment, derived from its stored ledger entry alone: every writer writes the same one."""
    payment = {"ledgerEntryId": entry["_id"], "amountCents": invoice["totalCents"], "at": entry["createdAt"]}
    if entry["status"] == APPLIED:
        return {"outcome": COMPLETED, **payment, "debitId": entry["debitId"]}
    return {"outcome": FAILED, **payment, "reason": entry["reason"]}
