"""Billing's published surface: what the Lambda glue (``entry``), the operator tools and tests call.

The code lives in modules named for what they hold:

- ``sessions``: a batch of SESSION_ENDED through the billing steps (the gate, the order of steps)
- ``settlement``: debit, settle, ledger entry, markers: why a payment counts once
- ``invoice_events``: the events of an invoice, built from stored state only
- ``wallets``: opening a wallet, crediting one back once
- ``credit_notes``: corrections
- ``views`` and ``numbers``: read views with page tokens; invoice and credit note numbers
- ``policy``: settings-derived rules, the ports (``BillingDeps``) and derived ids
"""

from __future__ import annotations

from chalicelib.billing.credit_notes import issue_credit_note
from chalicelib.billing.policy import BillingDeps, BillingPolicy, WalletNotOpen, invoice_id_for, ledger_entry_id
from chalicelib.billing.session_state import SessionRequest
from chalicelib.billing.sessions import STEPS, bill_session, bill_sessions
from chalicelib.billing.views import decode_cursor, encode_cursor, get_invoice, list_invoices, wallet_view
from chalicelib.billing.wallets import open_wallet

__all__ = [
    "STEPS",
    "BillingDeps",
    "BillingPolicy",
    "SessionRequest",
    "WalletNotOpen",
    "bill_session",
    "bill_sessions",
    "decode_cursor",
    "encode_cursor",
    "get_invoice",
    "invoice_id_for",
    "issue_credit_note",
    "ledger_entry_id",
    "list_invoices",
    "open_wallet",
    "wallet_view",
]
