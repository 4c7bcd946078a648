"""``python -m chalicelib credit-note INVOICE_ID --amount 1.50 --reason "..." [--key K]``.

Corrections are credit notes, never edits of an invoice, and an operator issues them:
there is no client-facing mutation for money going back. The command runs the same
``issue_credit_note`` a Lambda would, against the stack or stage the CLI points at.

Idempotent: the note's id derives from the invoice and ``--key``; without ``--key`` the
key is the amount and reason, so the same command run twice (a retry after a timeout)
issues one note. Pass a ``--key`` of your own to issue a second identical correction.
Exit codes (:mod:`chalicelib.cli_exits`): 0 issued (or already issued), 2 bad amount or
nothing left to credit, 5 the invoice is still being settled or the store is unreachable
(run again shortly), 6 no such invoice.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from decimal import Decimal, InvalidOperation
from typing import Any

from chalicelib import cli_exits

MAX_REASON_CHARS = 500


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "credit-note", help="credit part or all of an invoice (a credit note; paid invoices refund the wallet)",
        epilog=cli_exits.epilog(cli_exits.NOT_FOUND), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("invoice_id", help="the invoice's id (the `id` of `invoices` / `invoice` in GraphQL)")
    parser.add_argument("--amount", type=_amount, required=True, help="gross amount to credit, e.g. 1.50 (> 0)")
    parser.add_argument("--reason", type=_reason, required=True, help="why, for the customer and the audit")
    parser.add_argument("--key", default=None, help="idempotency key (default: derived from amount and reason)")
    parser.set_defaults(func=run)


def _amount(text: str) -> Decimal:
    """A positive amount with at most two decimals: money is never rounded behind the operator's back."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError("expected an amount such as 1.50") from None
    if not value.is_finite() or value <= 0 or value.as_tuple().exponent < -2:
        raise argparse.ArgumentTypeError("expected an amount > 0 with at most two decimals, such as 1.50")
    return value


def _reason(text: str) -> str:
    if not text.strip() or len(text) > MAX_REASON_CHARS:
        raise argparse.ArgumentTypeError(f"expected a reason of 1 to {MAX_REASON_CHARS} characters")
    return text.strip()


def default_key(amount: Decimal, reason: str) -> str:
    """The key of a command run without ``--key``: ``2``, ``2.0`` and ``2.00`` are one amount, so one key
    (the retry of a timed-out command is often typed again, not recalled from history)."""
    return hashlib.sha256(f"{amount.quantize(Decimal('0.01'))}|{reason}".encode()).hexdigest()[:32]


def run(args: argparse.Namespace) -> int:
    from chalicelib.billing.credit_notes import issue_credit_note
    from chalicelib.billing.entry import billing_deps
    from chalicelib.billing.tariffs import money_text
    from chalicelib.contracts.errors import NotFound, TransientError, ValidationError

    key = args.key or default_key(args.amount, args.reason)
    try:
        note = issue_credit_note(billing_deps(), args.invoice_id, amount=args.amount, reason=args.reason, key=key)
    except NotFound as exc:
        return _fail("NotFound", exc.message, cli_exits.NOT_FOUND)
    except ValidationError as exc:
        return _fail("ValidationError", exc.message, cli_exits.BAD_INPUT)
    except TransientError as exc:
        return _fail("TransientError", str(exc), cli_exits.UNAVAILABLE)
    print(json.dumps({
        "id": note["_id"], "number": note["number"], "invoiceId": note["invoiceId"],
        "invoiceNumber": note["invoiceNumber"], "currency": note["currency"],
        "net": money_text(note["netCents"]), "vat": money_text(note["vatCents"]),
        "total": money_text(note["totalCents"]), "issuedAt": note["issuedAt"].isoformat(),
    }))
    return cli_exits.OK


def _fail(error: str, message: str, code: int) -> int:
    print(json.dumps({"error": error, "message": message}), file=sys.stderr)
    return code
