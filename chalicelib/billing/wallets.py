"""Wallets outside a session's debit: opening one, and crediting it back once (a credit note's refund).

A refund is a balance move like a debit (see ``settlement``), with the ledger entry as
the record that counts: the move pushes a marker ``{entry, debit, cents, at}``, the
entry (unique ``_id``) is inserted naming that debit, then the marker is pulled. A
retry finds the marker (the move happened: record it) or the entry (done); a move
the stored entry does not name is undone, once, under its marker's guard.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from chalicelib.billing.policy import BillingDeps
from chalicelib.billing.repository import MarkerChange, Move
from chalicelib.billing.session_state import marker_of
from chalicelib.contracts.errors import NotFound
from chalicelib.contracts.events import Event


def open_wallet(deps: BillingDeps, event: Event) -> bool:
    """Open the user's wallet with the opening balance; True if this call opened it.

    The opening credit is a ledger entry too (written first), so the balance always
    equals the sum of the wallet's APPLIED ledger entries.
    """
    user_id = event.payload["userId"]
    now = deps.now()
    opening = deps.policy.opening_balance_cents
    if opening:
        deps.repo.insert_ledger_entries([{
            "_id": f"{user_id}:opening", "walletId": user_id, "kind": "OPENING", "amountCents": opening,
            "currency": deps.policy.currency, "status": "APPLIED", "createdAt": now,
        }])
    return deps.repo.insert_wallet({
        "_id": user_id, "userId": user_id, "currency": deps.policy.currency, "balanceCents": opening,
        "pending": [], "openedAt": now, "updatedAt": now,
    })


def credit_once(deps: BillingDeps, entry: Mapping[str, Any]) -> dict[str, Any]:
    """Add ``entry["amountCents"]`` (> 0) to the wallet once; returns the stored ledger entry.

    ``entry`` is the APPLIED ledger entry to record, without ``debitId``. No floor: a
    credit only raises the balance.
    """
    wallet_id, entry_id = entry["walletId"], entry["_id"]
    stored = deps.repo.ledger_entry(entry_id)
    marker = marker_of(deps.repo.wallet(wallet_id), entry_id)
    if stored is None:
        if marker is None:
            marker = _move(deps, wallet_id, entry_id, int(entry["amountCents"]))
        if marker is not None:
            document = {**entry, "debitId": marker["debit"], "createdAt": marker["at"]}
            refused = deps.repo.insert_ledger_entries([document])
            # Refused as a duplicate: a twin recorded the credit first, and its entry decides.
            stored = deps.repo.ledger_entry(entry_id) if refused else document
        else:
            stored = deps.repo.ledger_entry(entry_id)
    if marker is not None and stored is not None:
        deps.repo.change_markers([MarkerChange(wallet_id, marker, reverse=marker["debit"] != stored.get("debitId"))])
    if stored is None:
        raise NotFound("The wallet to credit does not exist.")
    return stored


def _move(deps: BillingDeps, wallet_id: str, entry_id: str, cents: int) -> dict[str, Any] | None:
    """Push the credit and its marker; if refused, the marker a twin pushed meanwhile (None: no wallet)."""
    now = deps.now()
    marker = {"entry": entry_id, "debit": str(uuid.uuid4()), "cents": cents, "at": now}
    if deps.repo.move_balances([Move(wallet_id, marker, None, now)]):
        return marker
    return marker_of(deps.repo.wallet(wallet_id), entry_id)
