"""Billing logic: a session becomes one invoice, one wallet debit and its events, exactly once.

There are no transactions to lean on (FerretDB has none, and correctness must
not depend on them), so every step records its own result under a key derived
from the session and checks it before acting; a redelivery after a crash at any
point resumes where the last attempt stopped:

1. number reserved   ``invoice_numbers[_id="invoice:<sessionId>"]`` (counter guarded by ``lastKey``)
2. invoice stored    ``invoices[_id=uuid5(sessionId)]`` (+ unique ``sessionId``), status OPEN
3. ledger entry      ``ledger[_id="<walletId>:<sessionId>"]`` status PENDING: the source of truth
4. wallet debited    under the wallet's lease, guarded ``$inc``: entry still PENDING, its id not
                     in ``wallet.applied`` (the recent ids), balance covers it
5. entry settled     ledger entry APPLIED (or REJECTED with INSUFFICIENT_FUNDS)
6. invoice settled   PAID (or OPEN) with the payment outcome and its time
7. events published  INVOICE_GENERATED then PAYMENT_COMPLETED / PAYMENT_FAILED,
                     ids ``derived_event_id(type, sessionId)``, times from the stored invoice,
                     so a republish after a crash is byte-for-byte the same event
8. invoice marked    ``eventsPublished`` (a redelivery after this publishes nothing)

``deps.checkpoint(step)`` is called after each step; tests use it to crash there.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from chalicelib.billing.repository import BillingRepository
from chalicelib.billing.tariffs import Tariff, Usage, from_cents, money_text, price, round_cents, to_cents
from chalicelib.contracts.errors import NotFound, ValidationError
from chalicelib.contracts.events import (
    INVOICE_GENERATED,
    PAYMENT_COMPLETED,
    PAYMENT_FAILED,
    Event,
    derived_event_id,
)
from chalicelib.events.consumer import PermanentError, TransientError
from chalicelib.events.publisher import OutgoingEvent, Publisher

INVOICE_NAMESPACE = uuid.UUID("3d0f2c55-7a0e-4b8e-a3c9-6c1f4f7f9b21")
STEPS = ("number_reserved", "invoice_stored", "ledger_entry_stored", "wallet_debited", "ledger_entry_settled",
         "invoice_settled", "events_published", "invoice_marked")
LOCK_LEASE_SECONDS = 20
# Ids of recently applied ledger entries kept on the wallet: APPLIED_WINDOW to twice that, plus any
# settled less than EVICT_AFTER ago (longer than any Lambda can run: 15 min). See _keep_applied_short.
APPLIED_WINDOW = 100
EVICT_AFTER = dt.timedelta(hours=1)
LOCK_TRIES = 20
LOCK_WAIT_SECONDS = 0.02
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
DEFAULT_PAGE = 20
MAX_PAGE = 100


class WalletNotOpen(TransientError):
    """The user's wallet does not exist yet: USER_REGISTERED may simply not be processed yet."""


def invoice_id_for(session_id: str) -> str:
    return str(uuid.uuid5(INVOICE_NAMESPACE, f"invoice:{session_id}"))


def ledger_entry_id(wallet_id: str, session_id: str) -> str:
    return f"{wallet_id}:{session_id}"


def _ms(value: dt.datetime) -> dt.datetime:
    """BSON keeps milliseconds: truncate first so what we publish equals what we stored."""
    value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).replace(microsecond=value.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class BillingPolicy:
    default_tariff: Tariff
    currency: str
    floor_cents: int
    opening_balance_cents: int

    @classmethod
    def from_settings(cls, settings: Any) -> BillingPolicy:
        return cls(
            default_tariff=Tariff.from_settings(settings),
            currency=settings.currency,
            floor_cents=to_cents(round_cents(settings.wallet_floor)),
            opening_balance_cents=to_cents(round_cents(settings.wallet_opening_balance)),
        )


@dataclass
class BillingDeps:
    repo: BillingRepository
    publisher: Publisher
    clock: Callable[[], dt.datetime]
    policy: BillingPolicy
    checkpoint: Callable[[str], None] = field(default=lambda step: None)
    sleep: Callable[[float], None] = time.sleep

    def now(self) -> dt.datetime:
        return _ms(self.clock())


# --- wallets ---------------------------------------------------------------------------------

def open_wallet(deps: BillingDeps, event: Event) -> bool:
    """Open the user's wallet with the opening balance; True if this call opened it.

    The opening credit is a ledger entry too (written first), so the balance always
    equals the sum of the wallet's APPLIED ledger entries.
    """
    user_id = event.payload["userId"]
    now = deps.now()
    opening = deps.policy.opening_balance_cents
    applied: list[str] = []
    if opening:
        entry_id = f"{user_id}:opening"
        deps.repo.insert_ledger_entry({
            "_id": entry_id, "walletId": user_id, "kind": "OPENING", "amountCents": opening,
            "currency": deps.policy.currency, "status": "APPLIED", "createdAt": now,
        })
        applied.append(entry_id)
    return deps.repo.insert_wallet({
        "_id": user_id, "userId": user_id, "currency": deps.policy.currency, "balanceCents": opening,
        "applied": applied, "openedAt": now, "updatedAt": now,
    })


# --- billing a session -----------------------------------------------------------------------

def bill_session(deps: BillingDeps, event: Event, *, final_attempt: bool = False,
                 correlation_id: str | None = None) -> dict[str, Any]:
    """Bill one SESSION_ENDED exactly once in effect; safe to call any number of times.

    Raises ``WalletNotOpen`` (transient) while the wallet is missing, unless this is
    the final attempt: then the invoice stays OPEN with PAYMENT_FAILED/WALLET_NOT_FOUND.
    """
    session = event.payload
    invoice_id = invoice_id_for(session["sessionId"])
    invoice = deps.repo.invoice(invoice_id)
    if invoice is None:
        invoice = _issue_invoice(deps, session, invoice_id)
    if not invoice.get("payment"):
        invoice = _settle(deps, invoice, final_attempt)
    if not invoice.get("eventsPublished"):
        deps.publisher.publish(events_for(invoice), correlation_id=correlation_id)
        deps.checkpoint("events_published")
        deps.repo.mark_published(invoice_id)
        deps.checkpoint("invoice_marked")
    return {"invoiceId": invoice_id, "number": invoice["number"], "status": invoice["status"],
            "total": money_text(invoice["totalCents"]), "payment": invoice["payment"]["outcome"]}


def _settle(deps: BillingDeps, invoice: Mapping[str, Any], final_attempt: bool) -> dict[str, Any]:
    """Collect and record the payment once, even when a twin delivery of the session runs alongside.

    Under the invoice's lease the invoice is read again (a twin may have settled it)
    and a payment is written only if none is there; the lease is the only guard (see
    ``BillingRepository.settle_invoice``). The result is what the store holds: both
    deliveries then publish the same events (same eventId, same paidAt).
    """
    invoice_id = invoice["_id"]
    with lease(deps, f"invoice:{invoice_id}", "invoice busy"):
        current = deps.repo.invoice(invoice_id) or invoice
        if not current.get("payment"):
            payment = _collect_payment(deps, current, final_attempt)
            status = "PAID" if payment["outcome"] == "COMPLETED" else "OPEN"
            deps.repo.settle_invoice(invoice_id, status, payment)
            deps.checkpoint("invoice_settled")
    stored = deps.repo.invoice(invoice_id)
    if stored is None or not stored.get("payment"):
        raise TransientError(f"invoice {invoice_id} not settled after settling; retrying")
    return stored


def _tariff_for(deps: BillingDeps, station_id: str) -> Tariff:
    doc = deps.repo.tariff_for_station(station_id)
    try:
        tariff = Tariff.from_document(doc) if doc else deps.policy.default_tariff
    except (KeyError, ValueError, ArithmeticError) as exc:
        raise PermanentError(f"tariff of station {station_id} is malformed: {exc}") from None
    if tariff.currency != deps.policy.currency:
        raise PermanentError(f"tariff {tariff.tariff_id} is in {tariff.currency}; wallets are in "
                             f"{deps.policy.currency}")
    return tariff


def _issue_invoice(deps: BillingDeps, session: Mapping[str, Any], invoice_id: str) -> dict[str, Any]:
    tariff = _tariff_for(deps, session["stationId"])
    usage = Usage(energy_kwh=session["energyKwh"], duration_seconds=Decimal(session["durationMinutes"] * 60),
                  idle_minutes=session.get("idleMinutes") or 0)
    bill = price(tariff, usage)
    now = deps.now()
    number = reserve_number(deps.repo, "INV", f"invoice:{session['sessionId']}", now.year)
    deps.checkpoint("number_reserved")
    stored = deps.repo.insert_invoice({
        "_id": invoice_id, "number": number, "sessionId": session["sessionId"], "userId": session["userId"],
        "stationId": session["stationId"], "status": "OPEN", "currency": bill.currency,
        "lines": [line.to_document() for line in bill.lines], "netCents": to_cents(bill.net),
        "vatCents": to_cents(bill.vat), "totalCents": to_cents(bill.total), "vatRate": str(bill.vat_rate),
        "tariff": tariff.to_document(), "issuedAt": now,
        "usage": {"energyKwh": str(usage.energy_kwh), "durationMinutes": session["durationMinutes"],
                  "idleMinutes": usage.idle_minutes, "endedAt": session["endedAt"]},
    })
    deps.checkpoint("invoice_stored")
    return stored


def reserve_number(repo: BillingRepository, prefix: str, key: str, year: int) -> str:
    """An ordered number per year for ``key``, the same one however often this runs.

    The reservation (keyed by ``key``) is read first, so a retry after the number was
    reserved reuses it. A crash between claiming and reserving is repaired when the
    retry's probe meets its own claim; only a concurrent duplicate delivery, or another
    key advancing the hint past the crashed claim, skips a number: gaps, never duplicates.
    """
    reservation = repo.reserved_number(key)
    if reservation is None:
        series = f"{prefix}-{year}"
        reservation = repo.reserve_number(key, series, repo.take_number(series, key))
        repo.advance_hint(series, int(reservation["seq"]))
    return f"{reservation['series']}-{int(reservation['seq']):06d}"


def _collect_payment(deps: BillingDeps, invoice: Mapping[str, Any], final_attempt: bool) -> dict[str, Any]:
    wallet_id = invoice["userId"]
    entry_id = ledger_entry_id(wallet_id, invoice["sessionId"])
    if deps.repo.wallet(wallet_id) is None:
        if not final_attempt:
            raise WalletNotOpen("wallet not open yet for this session's user; retrying")
        return {"outcome": "FAILED", "reason": "WALLET_NOT_FOUND", "amountCents": invoice["totalCents"],
                "at": deps.now()}
    entry = deps.repo.insert_ledger_entry({
        "_id": entry_id, "walletId": wallet_id, "kind": "DEBIT", "sessionId": invoice["sessionId"],
        "invoiceId": invoice["_id"], "amountCents": -invoice["totalCents"], "currency": invoice["currency"],
        "status": "PENDING", "createdAt": deps.now(),
    })
    deps.checkpoint("ledger_entry_stored")
    status = entry["status"]
    if status == "PENDING":
        status = _apply(deps, wallet_id, entry, guard_floor=True)
    if status == "APPLIED":
        return {"outcome": "COMPLETED", "ledgerEntryId": entry_id, "amountCents": invoice["totalCents"],
                "at": deps.now()}
    return {"outcome": "FAILED", "reason": entry.get("reason") or "INSUFFICIENT_FUNDS",
            "ledgerEntryId": entry_id, "amountCents": invoice["totalCents"], "at": deps.now()}


def _apply(deps: BillingDeps, wallet_id: str, entry: Mapping[str, Any], guard_floor: bool) -> str:
    """Apply a PENDING entry to the balance at most once (under the wallet's lock); settle its status.

    Under the lock the entry is read again: a twin attempt may have settled it
    while this one waited, and a settled entry may already have left
    ``wallet.applied`` (see :func:`_keep_applied_short`), where the guard of
    ``apply_entry`` could no longer see it.
    """
    floor = deps.policy.floor_cents if guard_floor else None
    with wallet_lock(deps, wallet_id):
        current = deps.repo.ledger_entry(entry["_id"]) or entry
        if current["status"] != "PENDING":
            return current["status"]
        after = deps.repo.apply_entry(wallet_id, entry["_id"], entry["amountCents"], floor, deps.now())
        if after is None:  # either applied by an earlier attempt, or the balance does not cover it
            wallet = deps.repo.wallet(wallet_id) or {}
            applied = entry["_id"] in (wallet.get("applied") or [])
        else:
            applied = True
            _keep_applied_short(deps, wallet_id, after)
        deps.checkpoint("wallet_debited")
        status = "APPLIED" if applied else "REJECTED"
        deps.repo.set_entry_status(entry["_id"], status, None if applied else "INSUFFICIENT_FUNDS", now=deps.now())
        deps.checkpoint("ledger_entry_settled")
    return status


def _keep_applied_short(deps: BillingDeps, wallet_id: str, applied: list[str]) -> None:
    """Bound ``wallet.applied`` (a wallet document must not grow with every session it ever paid).

    Past twice ``APPLIED_WINDOW`` ids, the oldest beyond the window are
    candidates. An id leaves only when its ledger entry was settled more than
    ``EVICT_AFTER`` ago: every attempt that could still act on the entry as
    PENDING (one that read it before it was settled, or a lease holder that
    stalled past its lease) started less than a Lambda's lifetime (15 min at
    most) before the settling, so it is over by then, and every later attempt
    reads the settled entry under the lock and stops. A PENDING candidate is
    settled now and leaves on a later trim.
    """
    if len(applied) <= 2 * APPLIED_WINDOW:
        return
    now = deps.now()
    candidates = applied[:-APPLIED_WINDOW]
    settled = deps.repo.settle_for_eviction(candidates, now)
    deps.repo.evict_applied(wallet_id, [i for i in candidates if i in settled and now - settled[i] > EVICT_AFTER])


@contextmanager
def wallet_lock(deps: BillingDeps, wallet_id: str) -> Iterator[None]:
    """One writer per wallet (see :func:`lease`)."""
    with lease(deps, f"wallet:{wallet_id}", "wallet busy"):
        yield


@contextmanager
def lease(deps: BillingDeps, name: str, busy: str) -> Iterator[None]:
    """A lease lock taken by unique insert (see ``acquire_lock``); not re-entrant.

    A killed holder's lease expires after ``LOCK_LEASE_SECONDS``; a lock still busy
    after a short wait is a transient failure, so the message is retried with back-off.
    """
    owner = str(uuid.uuid4())
    for attempt in range(LOCK_TRIES):
        if deps.repo.acquire_lock(name, owner, deps.now(), LOCK_LEASE_SECONDS):
            break
        deps.sleep(LOCK_WAIT_SECONDS * (attempt + 1))
    else:
        raise TransientError(f"{busy}; retrying later")
    try:
        yield
    finally:
        deps.repo.release_lock(name, owner)


def events_for(invoice: Mapping[str, Any]) -> list[OutgoingEvent]:
    """The invoice's events, rebuilt only from stored state (same ids, same times on every retry)."""
    session_id = invoice["sessionId"]
    issued_at = _ms(invoice["issuedAt"])
    total = from_cents(invoice["totalCents"])
    common = {"invoiceId": invoice["_id"], "sessionId": session_id, "userId": invoice["userId"],
              "currency": invoice["currency"]}
    generated = OutgoingEvent(
        INVOICE_GENERATED,
        {**common, "invoiceNumber": invoice["number"], "stationId": invoice["stationId"],
         "net": from_cents(invoice["netCents"]), "vat": from_cents(invoice["vatCents"]), "total": total,
         "status": invoice["status"], "issuedAt": issued_at},
        event_id=derived_event_id(INVOICE_GENERATED, session_id), idempotency_key=session_id,
        occurred_at=issued_at,
    )
    payment = {**invoice["payment"], "at": _ms(invoice["payment"]["at"])}
    if payment["outcome"] == "COMPLETED":
        second = OutgoingEvent(PAYMENT_COMPLETED, {**common, "amount": total, "paidAt": payment["at"]},
                               event_id=derived_event_id(PAYMENT_COMPLETED, session_id),
                               idempotency_key=session_id, occurred_at=payment["at"])
    else:
        second = OutgoingEvent(PAYMENT_FAILED, {**common, "amount": total, "reason": payment["reason"],
                                                "failedAt": payment["at"]},
                               event_id=derived_event_id(PAYMENT_FAILED, session_id),
                               idempotency_key=session_id, occurred_at=payment["at"])
    return [generated, second]


# --- corrections -----------------------------------------------------------------------------

def issue_credit_note(deps: BillingDeps, invoice_id: str, *, amount: Decimal, reason: str,
                      key: str) -> dict[str, Any]:
    """Correct an invoice by a credit note of ``amount`` (gross), never by editing it.

    Idempotent per (invoice, ``key``). The VAT share follows the invoice's rate; the
    credits of an invoice never exceed its total. If the invoice was paid, the amount
    goes back to the wallet through a ledger entry of its own.
    """
    invoice = deps.repo.invoice(invoice_id)
    if invoice is None:
        raise NotFound("No such invoice.")
    note_id = str(uuid.uuid5(INVOICE_NAMESPACE, f"credit:{invoice_id}:{key}"))
    gross = to_cents(round_cents(amount))
    # The check "credits never exceed the total" reads, then writes: one writer per invoice's credits.
    with lease(deps, f"credit:{invoice_id}", "credit notes of this invoice busy"):
        notes = deps.repo.credit_notes_of(invoice_id)
        note = next((n for n in notes if n["_id"] == note_id), None)
        if note is None:
            earlier = sum(-n["totalCents"] for n in notes)
            if gross <= 0 or earlier + gross > invoice["totalCents"]:
                raise ValidationError("Credit amount must be positive and at most what is left on the invoice.",
                                      details={"amount": "out of range"})
            note = _insert_credit_note(deps, invoice, note_id, gross, reason)
    if invoice.get("status") == "PAID":
        # A retry under the same key returns the stored note: refund what the note says, not this call's amount.
        entry = deps.repo.insert_ledger_entry({
            "_id": f"{invoice['userId']}:credit:{note_id}", "walletId": invoice["userId"], "kind": "REFUND",
            "creditNoteId": note_id, "amountCents": -note["totalCents"], "currency": invoice["currency"],
            "status": "PENDING", "createdAt": deps.now(),
        })
        if entry["status"] == "PENDING":
            _apply(deps, invoice["userId"], entry, guard_floor=False)
    return note


def _insert_credit_note(deps: BillingDeps, invoice: Mapping[str, Any], note_id: str, gross: int,
                        reason: str) -> dict[str, Any]:
    rate = Decimal(invoice.get("vatRate", "0"))
    vat = to_cents((from_cents(gross) * rate / (1 + rate)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    now = deps.now()
    number = reserve_number(deps.repo, "CN", f"credit:{note_id}", now.year)
    return deps.repo.insert_credit_note({
        "_id": note_id, "number": number, "invoiceId": invoice["_id"], "invoiceNumber": invoice["number"],
        "userId": invoice["userId"], "currency": invoice["currency"], "reason": reason[:500],
        "netCents": -(gross - vat), "vatCents": -vat, "totalCents": -gross, "issuedAt": now,
    })


# --- queries ---------------------------------------------------------------------------------

def wallet_view(repo: BillingRepository, user_id: str) -> dict[str, Any] | None:
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
    issued = _ms(doc["issuedAt"])
    millis = (issued - EPOCH) // dt.timedelta(milliseconds=1)
    raw = json.dumps({"t": millis, "i": doc["_id"]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: Any) -> tuple[dt.datetime, str]:
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
    return _ms(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")
