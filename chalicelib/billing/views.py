"""What the ``wallet``, ``invoices`` and ``invoice`` resolvers return, and the opaque page token.

Reads only. Money leaves as decimal strings; a user sees only their own invoices.
The page token encodes the last item's (issuedAt, _id), the sort key of the
``invoices_by_user`` index, so a page is one indexed range read.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from chalicelib.billing.policy import ms
from chalicelib.billing.repository import BillingRepository
from chalicelib.billing.tariffs import money_text
from chalicelib.contracts.errors import NotFound, ValidationError

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
DEFAULT_PAGE = 20
MAX_PAGE = 100


def wallet_view(repo: BillingRepository, user_id: str) -> dict[str, Any] | None:
    """The caller's balance, or None before the wallet is open."""
    wallet = repo.wallet(user_id)
    if wallet is None:
        return None
    updated = wallet.get("updatedAt")
    return {"balance": money_text(wallet["balanceCents"]), "currency": wallet["currency"],
            "updatedAt": _iso(updated) if updated else None}


def invoice_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": doc["_id"], "number": doc["number"], "sessionId": doc["sessionId"], "stationId": doc["stationId"],
        "status": doc["status"], "currency": doc["currency"], "net": money_text(doc["netCents"]),
        "vat": money_text(doc["vatCents"]), "total": money_text(doc["totalCents"]),
        "issuedAt": _iso(doc["issuedAt"]),
        "lines": [{"component": line["component"], "quantity": line["quantity"], "unitPrice": line["unitPrice"],
                   "amount": money_text(line["amountCents"])} for line in doc.get("lines", [])],
    }


def get_invoice(repo: BillingRepository, user_id: str, invoice_id: Any) -> dict[str, Any]:
    """The caller's invoice; someone else's is NotFound (its existence is not the caller's business)."""
    doc = repo.invoice(str(invoice_id)) if isinstance(invoice_id, str) else None
    if doc is None or doc.get("userId") != user_id:
        raise NotFound("No invoice with this id.")
    return invoice_view(doc)


def list_invoices(repo: BillingRepository, user_id: str, first: Any = None, after: Any = None) -> dict[str, Any]:
    """The caller's invoices, newest first, ``first`` per page, ``nextToken`` for the next page."""
    if first is None:
        first = DEFAULT_PAGE
    if isinstance(first, bool) or not isinstance(first, int) or not 1 <= first <= MAX_PAGE:
        raise ValidationError(f"Invalid input: first: must be between 1 and {MAX_PAGE}.",
                              details={"first": f"must be between 1 and {MAX_PAGE}"})
    position = decode_cursor(after) if after else None
    docs = repo.invoices_of(user_id, first + 1, position)
    page = docs[:first]
    token = encode_cursor(page[-1]) if len(docs) > first else None
    return {"items": [invoice_view(d) for d in page], "nextToken": token}


def encode_cursor(doc: Mapping[str, Any]) -> str:
    issued = ms(doc["issuedAt"])
    millis = (issued - EPOCH) // dt.timedelta(milliseconds=1)
    raw = json.dumps({"t": millis, "i": doc["_id"]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: Any) -> tuple[dt.datetime, str]:
    """The position a token names; anything a client forged or broke is a ValidationError, never a crash."""
    try:
        padded = str(token) + "=" * (-len(str(token)) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        millis, invoice_id = int(data["t"]), str(data["i"])
        position = EPOCH + dt.timedelta(milliseconds=millis)
    except (ValueError, KeyError, TypeError, OverflowError, binascii.Error):
        # OverflowError: a forged "t" beyond datetime's range (10**20, 1e400) is a bad token, not a crash.
        raise ValidationError("Invalid input: after: not a token returned by invoices.",
                              details={"after": "invalid cursor"}) from None
    return position, invoice_id


def _iso(value: dt.datetime) -> str:
    return ms(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")
