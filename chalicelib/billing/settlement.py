"""The wallet side of billing a batch: debit, record the ledger entry, settle the invoice, clear markers.

Why a session's payment counts exactly once without transactions or leases:

- **debit**: one guarded update moves the balance and pushes a marker
  ``{entry, debit, cents, at}`` (``debit`` is this attempt's id). Its filter admits it
  only if the balance covers it and the wallet holds no marker of this entry, so twins
  racing here debit once, the balance never goes below the floor, and a crash after
  it leaves the marker to say the money moved.
- **ledger entry**: the decision. Its ``_id`` is ``<walletId>:<sessionId>``, so only one
  is ever stored: APPLIED naming the debit it counts, or REJECTED with the reason
  (INSUFFICIENT_FUNDS). An attempt whose insert is refused reads the stored entry and
  follows it. A session whose user has no wallet never gets this far (``plausibility``).
- **invoice**: status and ``payment`` are copied from the stored entry, so every
  writer, late or twin, writes the same values; the filter is the ``_id`` alone.
- **markers**: the counted debit's marker is pulled. Any other marker of the entry
  is a debit nobody counts (an attempt that stalled before debiting while a twin
  finished everything, or that debited after a REJECTED entry was stored); it is
  undone by one update guarded by that marker's presence, so it is undone once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from chalicelib.billing.plausibility import missing_wallet
from chalicelib.billing.policy import BillingDeps
from chalicelib.billing.repository import MarkerChange, Move, Settlement
from chalicelib.billing.session_state import (
    APPLIED,
    INSUFFICIENT_FUNDS,
    SessionBill,
    active,
    applied_entry,
    marker_of,
    payment_of,
    rejected_entry,
)
from chalicelib.events.consumer import TransientError


def read_wallets(deps: BillingDeps, bills: list[SessionBill]) -> None:
    """Each session's wallet (open? a marker of its entry?) and, for a stored invoice without payment, its entry.

    Read once for the whole batch before any invoice is stored, so a new session of a user
    without a wallet gets none (``plausibility.check_users``). Read again, after the
    invoice step, only for sessions whose insert was refused (a twin may have debited since).
    One read per collection; the ledger only when some stored invoice has no payment.
    """
    unread = [bill for bill in active(bills) if bill.wallet_open is None and not bill.fresh]
    if not unread:
        return
    wallets = deps.repo.wallets(bill.user_id for bill in unread)
    for bill in unread:
        wallet = wallets.get(bill.user_id)
        bill.wallet_open = wallet is not None
        bill.marker = marker_of(wallet, bill.entry_id)
    unsettled = [bill for bill in unread if bill.invoice is not None and not bill.settled]
    if unsettled:
        entries = deps.repo.ledger_entries(bill.entry_id for bill in unsettled)
        for bill in unsettled:
            bill.entry = entries.get(bill.entry_id)
            bill.entry_stored = bill.entry is not None


def debit(deps: BillingDeps, bills: list[SessionBill]) -> None:
    """Propose each unsettled session's ledger entry, debiting (one bulk update) those that need it."""
    due = []
    now = deps.now()
    for bill in active(bills):
        if bill.settled or bill.entry is not None:
            continue
        if bill.marker is not None:  # an earlier attempt debited and died before recording it: that debit counts
            bill.entry = applied_entry(bill, bill.marker)
        elif bill.wallet_open is False:  # only an invoice stored before wallets were checked first
            bill.error = missing_wallet(bill)
        else:
            due.append(bill)
    if not due:
        return
    markers = {bill.session_id: {"entry": bill.entry_id, "debit": str(uuid.uuid4()),
                                 "cents": -bill.invoice["totalCents"], "at": now} for bill in due}
    moved = deps.repo.move_balances([Move(bill.user_id, markers[bill.session_id], deps.policy.floor_cents, now)
                                     for bill in due])
    if moved == len(due):
        for bill in due:
            bill.marker = markers[bill.session_id]
            bill.entry = applied_entry(bill, bill.marker)
    else:  # some were refused: the wallets say which, and why
        _after_refusals(deps, due, {bill.entry_id for bill in bills}, now)
    deps.checkpoint("wallet_debited")


def _after_refusals(deps: BillingDeps, due: list[SessionBill], ours: set[str], now: dt.datetime) -> None:
    """Read the wallets back: a marker of the entry (ours or a twin's) = debited; none = not open or not covered.

    "Not covered" is only a proposal: if a twin's debit was recorded meanwhile, the
    ledger insert is refused and the stored entry is followed. While the wallet holds a
    debit of another attempt that may still be undone (a late twin's), the refusal is
    not final either: the session is retried rather than stored as unpaid, except on
    its last attempt.
    """
    wallets = deps.repo.wallets(bill.user_id for bill in due)
    for bill in due:
        wallet = wallets.get(bill.user_id)
        bill.marker = marker_of(wallet, bill.entry_id)
        if bill.marker is not None:
            bill.entry = applied_entry(bill, bill.marker)
        elif wallet is None:
            bill.error = missing_wallet(bill)
        elif _foreign_debits(wallet, ours) and not bill.request.final_attempt:
            bill.error = TransientError("wallet has another attempt's debit in flight; retrying before refusing")
        else:
            bill.entry = rejected_entry(bill, INSUFFICIENT_FUNDS, now)


def _foreign_debits(wallet: Mapping[str, Any], ours: set[str]) -> bool:
    """Whether the wallet holds markers of entries this pass does not bill (in flight elsewhere)."""
    return any(marker.get("entry") not in ours for marker in wallet.get("pending") or [])


def record_entries(deps: BillingDeps, bills: list[SessionBill]) -> None:
    """Insert the proposed ledger entries; where one was stored first, that one is the decision."""
    due = [bill for bill in active(bills) if bill.entry is not None and not bill.entry_stored]
    if not due:
        return
    refused = set(deps.repo.insert_ledger_entries([bill.entry for bill in due]))
    stored = deps.repo.ledger_entries(due[index].entry_id for index in refused) if refused else {}
    for index, bill in enumerate(due):
        if index not in refused:
            bill.entry_stored = True
        elif (entry := stored.get(bill.entry_id)) is not None:
            bill.entry, bill.entry_stored = entry, True
        else:
            bill.error = TransientError(f"ledger entry {bill.entry_id} refused but not found; retrying")
    deps.checkpoint("ledger_entry_stored")


def settle(deps: BillingDeps, bills: list[SessionBill]) -> None:
    """Copy each decided entry onto its invoice: status PAID (APPLIED) or OPEN, and the payment."""
    due = [bill for bill in active(bills) if bill.entry_stored and not bill.settled]
    if not due:
        return
    settlements = []
    for bill in due:
        status = "PAID" if bill.entry["status"] == APPLIED else "OPEN"
        payment = payment_of(bill.entry, bill.invoice)
        settlements.append(Settlement(bill.invoice_id, status, payment))
        bill.invoice = {**bill.invoice, "status": status, "payment": payment}
    deps.repo.settle_invoices(settlements)
    deps.checkpoint("invoice_settled")


def clear_pending(deps: BillingDeps, bills: list[SessionBill]) -> None:
    """Pull the markers of counted debits; undo debits the stored entry does not count."""
    changes = []
    for bill in active(bills):
        if bill.marker is None or not bill.settled:
            continue
        counted = bill.invoice["payment"].get("debitId")
        changes.append(MarkerChange(bill.user_id, bill.marker, reverse=bill.marker["debit"] != counted))
    if changes:
        deps.repo.change_markers(changes)
        deps.checkpoint("pending_cleared")
