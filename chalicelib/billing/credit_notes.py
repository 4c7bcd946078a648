"""Corrections: a credit note against an invoice, never an edit of the invoice.

Idempotent per (invoice, ``key``): the note's ``_id`` derives from both. The credits
of one invoice never exceed its total: each note's amount is claimed on the invoice's
credit document by one guarded update (see ``BillingRepository.claim_credit``), so
concurrent notes cannot both take the last of it. The claim comes first and remembers
the note's amount, so a retry after a crash issues the note with what was claimed,
whatever amount the retry asks for. If the invoice was paid, the note's amount goes
back to the wallet through a ledger entry of its own (``wallets.credit_once``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from chalicelib.billing.numbers import reserve_numbers
from chalicelib.billing.policy import INVOICE_NAMESPACE, BillingDeps
from chalicelib.billing.tariffs import from_cents, round_cents, to_cents
from chalicelib.billing.wallets import credit_once
from chalicelib.contracts.errors import NotFound, ValidationError
from chalicelib.events.consumer import TransientError


def issue_credit_note(deps: BillingDeps, invoice_id: str, *, amount: Decimal, reason: str,
                      key: str) -> dict[str, Any]:
    """Credit ``amount`` (gross) of the invoice; the same ``key`` again returns the same note."""
    invoice = deps.repo.invoice(invoice_id)
    if invoice is None:
        raise NotFound("No such invoice.")
    if "payment" not in invoice:  # still being billed: whether to refund is not decided yet
        raise TransientError("The invoice is still being settled; issue the credit note again shortly.")
    note_id = str(uuid.uuid5(INVOICE_NAMESPACE, f"credit:{invoice_id}:{key}"))
    note = deps.repo.credit_note(note_id)
    if note is None:
        claimed = deps.repo.claim_credit(invoice_id, note_id, to_cents(round_cents(amount)), invoice["totalCents"])
        if claimed is None:
            raise ValidationError("Credit amount must be positive and at most what is left on the invoice.",
                                  details={"amount": "out of range"})
        note = _insert_note(deps, invoice, note_id, claimed, reason)
    if invoice.get("status") == "PAID":
        credit_once(deps, {
            "_id": f"{invoice['userId']}:credit:{note_id}", "walletId": invoice["userId"], "kind": "REFUND",
            "creditNoteId": note_id, "amountCents": -note["totalCents"], "currency": invoice["currency"],
            "status": "APPLIED",
        })
    return note


def _insert_note(deps: BillingDeps, invoice: Mapping[str, Any], note_id: str, gross: int,
                 reason: str) -> dict[str, Any]:
    """The note, numbered ``CN-<year>-<seq>``; its VAT share follows the invoice's rate."""
    rate = Decimal(invoice.get("vatRate", "0"))
    vat = to_cents((from_cents(gross) * rate / (1 + rate)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    now = deps.now()
    number = reserve_numbers(deps.repo, "CN", now.year, [note_id])[note_id]
    return deps.repo.insert_credit_note({
        "_id": note_id, "number": number, "invoiceId": invoice["_id"], "invoiceNumber": invoice["number"],
        "userId": invoice["userId"], "currency": invoice["currency"], "reason": reason[:500],
        "netCents": -(gross - vat), "vatCents": -vat, "totalCents": -gross, "issuedAt": now,
    })
