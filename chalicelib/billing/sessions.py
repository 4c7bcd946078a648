"""Billing SESSION_ENDED: each session becomes one invoice, at most one wallet debit, and its events.

A batch of sessions (a Lambda's SQS batch) goes through the steps together; each step
is one store call for all the sessions at that step, so ten sessions cost about the
round trips of one. After each step ``deps.checkpoint(step)`` is called (tests and the
chaos run crash there; a redelivery then resumes from what is stored):

   (read)               the invoices earlier deliveries stored: those sessions resume from them,
                        unless the stored one is another user's or other usage (a re-used sessionId)
   (check)              new sessions: ``endedAt`` within the age and clock-skew limits (``plausibility``)
   (read)               every session's wallet (open? a marker of its entry?) and, if its invoice
                        has no payment yet, its ledger entry; a new session without a wallet gets
                        no invoice: retried, refused as an unknown user on its last chance (the last
                        receive of the last re-drive, ``entry.last_chance``)
1. number_reserved      one per-year counter ``$inc`` for the batch's new invoices
2. invoice_stored       insert, status OPEN, no payment; unique ``_id``/``sessionId``: the gate. A
                        refused insert means another delivery got there first: resume from its invoice
                        (and read its wallet and entry again)
3. wallet_debited       guarded ``$inc`` + marker, see ``settlement``
4. ledger_entry_stored  unique per (wallet, session): APPLIED naming the debit, or REJECTED with the
                        reason. The entry stored first decides
5. invoice_settled      status PAID / OPEN and ``payment`` copied from the stored entry
6. pending_cleared      the counted debit's marker pulled; any other debit of the entry undone
7. events_published     INVOICE_GENERATED + PAYMENT_COMPLETED / PAYMENT_FAILED from the stored invoice
8. invoice_marked       ``eventsPublished``: a later delivery publishes nothing

An implausible session (see ``plausibility``) is a permanent failure: nothing is stored or debited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from chalicelib.billing import invoice_events, plausibility, settlement
from chalicelib.billing.numbers import reserve_numbers
from chalicelib.billing.policy import BillingDeps
from chalicelib.billing.session_state import SessionBill, SessionRequest, active
from chalicelib.billing.tariffs import MalformedTariff, Tariff, Usage, money_text, price, to_cents
from chalicelib.contracts.events import Event
from chalicelib.events.consumer import PermanentError, TransientError

STEPS = ("number_reserved", "invoice_stored", "wallet_debited", "ledger_entry_stored", "invoice_settled",
         "pending_cleared", "events_published", "invoice_marked")

Outcome = dict[str, Any] | Exception


def bill_session(deps: BillingDeps, event: Event, *, final_attempt: bool = False,
                 correlation_id: str | None = None) -> dict[str, Any]:
    """Bill one SESSION_ENDED exactly once in effect; safe to call any number of times, also concurrently.

    Raises what billing the session raised: ``WalletNotOpen`` (transient) while the wallet is
    missing unless this is the final attempt, ``PermanentError`` for an implausible session (too
    old, ahead of the clock, an unknown user on the final attempt, a re-used sessionId).
    """
    [outcome] = bill_sessions(deps, [SessionRequest(event, final_attempt, correlation_id)])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def bill_sessions(deps: BillingDeps, requests: Sequence[SessionRequest]) -> list[Outcome]:
    """Bill a batch; one outcome per request, in order: the billing summary, or the exception to report.

    A failure of the whole pass (the store gone, a crash injected between steps) is
    every open session's outcome: each is retried and resumes from what is stored.
    """
    bills, slots = _distinct(requests)
    try:
        for step in _PIPELINE:
            step(deps, bills)
    except Exception as exc:  # noqa: BLE001 - reported per session, so SQS retries each one
        for bill in active(bills):
            bill.error = exc
    return [slot if isinstance(slot, Exception) else _outcome(bills[slot]) for slot in slots]


def _distinct(requests: Sequence[SessionRequest]) -> tuple[list[SessionBill], list[int | Exception]]:
    """One bill per sessionId; a duplicate delivery in the same batch shares its outcome.

    A duplicate from another user or with other usage is a re-used sessionId: refused on its own.
    """
    bills: list[SessionBill] = []
    by_session: dict[str, int] = {}
    slots: list[int | Exception] = []
    for request in requests:
        session = request.event.payload
        index = by_session.get(session["sessionId"])
        if index is None:
            by_session[session["sessionId"]] = index = len(bills)
            bills.append(SessionBill(request))
        elif (reused := plausibility.reuse_problem(session, bills[index].user_id,
                                                  plausibility.usage_of_event(bills[index].session))):
            slots.append(reused)
            continue
        elif request.final_attempt and not bills[index].request.final_attempt:
            bills[index].request = request  # the last chance decides: a missing wallet is then final
        slots.append(index)
    return bills, slots


def _outcome(bill: SessionBill) -> Outcome:
    if bill.error is not None:
        return bill.error
    if not bill.settled:
        return TransientError(f"session {bill.session_id} not settled in this pass; retrying")
    invoice = bill.invoice
    return {"invoiceId": invoice["_id"], "number": invoice["number"], "status": invoice["status"],
            "total": money_text(invoice["totalCents"]), "payment": invoice["payment"]["outcome"]}


def _resume_from(bill: SessionBill, invoice: Mapping[str, Any]) -> None:
    """Continue from a stored invoice, unless it is another user's or other usage (never hand that one
    out, never change it)."""
    reused = plausibility.reuse_problem(bill.session, invoice.get("userId"), plausibility.usage_of_invoice(invoice))
    if reused is not None:
        bill.error = reused
    else:
        bill.invoice = dict(invoice)


def read_invoices(deps: BillingDeps, bills: list[SessionBill]) -> None:
    """Sessions invoiced by an earlier delivery resume from their invoice (and take no number)."""
    stored = deps.repo.invoices_by_id(bill.invoice_id for bill in bills)
    for bill in bills:
        if (invoice := stored.get(bill.invoice_id)) is not None:
            _resume_from(bill, invoice)


def issue_invoices(deps: BillingDeps, bills: list[SessionBill]) -> None:
    """Price the new sessions, number them, insert their invoices in one call; refused ones resume."""
    new = [bill for bill in active(bills) if bill.invoice is None]
    if not new:
        return
    tariffs = deps.repo.tariffs(bill.session["stationId"] for bill in new)
    now = deps.now()
    drafts: list[tuple[SessionBill, dict[str, Any]]] = []
    for bill in new:
        try:
            drafts.append((bill, _draft(deps, bill, tariffs.get(bill.session["stationId"]), now)))
        except PermanentError as exc:
            bill.error = exc
    if not drafts:
        return
    numbers = reserve_numbers(deps.repo, "INV", now.year, (bill.session_id for bill, _ in drafts))
    deps.checkpoint("number_reserved")
    for bill, draft in drafts:
        draft["number"] = numbers[bill.session_id]
    refused = set(deps.repo.insert_invoices([draft for _, draft in drafts]))
    for index, (bill, draft) in enumerate(drafts):
        if index not in refused:
            bill.invoice, bill.fresh = draft, True
    if refused:
        _resume_refused(deps, [drafts[index][0] for index in sorted(refused)])
    deps.checkpoint("invoice_stored")


def _resume_refused(deps: BillingDeps, bills: list[SessionBill]) -> None:
    """An insert refused as a duplicate: a twin stored the session's invoice first, so resume from it.

    The wallet read before the insert may predate the twin's debit: read it again (``wallet_open``
    None sends the session through ``settlement.read_wallets`` once more).
    """
    stored = deps.repo.invoices_by_id(bill.invoice_id for bill in bills)
    for bill in bills:
        bill.wallet_open = bill.marker = None
        invoice = stored.get(bill.invoice_id)
        if invoice is None:  # the duplicate was the number, not the session: take another next time
            bill.error = TransientError(f"invoice number for session {bill.session_id} was taken; retrying")
        else:
            _resume_from(bill, invoice)


def _tariff_for(deps: BillingDeps, document: Mapping[str, Any] | None) -> Tariff:
    """The station's tariff, else the default. The errors name the field, never a value (not even the
    stationId, which the body carries anyway): they become the dead letter's ``failureReason`` and
    ``BILLING_FAILED``'s reason."""
    try:
        tariff = Tariff.from_document(document) if document else deps.policy.default_tariff
    except MalformedTariff as exc:
        raise PermanentError(f"tariff of the session's station is malformed: field {exc.field}") from None
    if tariff.currency != deps.policy.currency:
        raise PermanentError(f"tariff of the session's station: field currency is not the wallets' "
                             f"{deps.policy.currency}")
    return tariff


def _draft(deps: BillingDeps, bill: SessionBill, tariff_doc: Mapping[str, Any] | None,
           now: dt.datetime) -> dict[str, Any]:
    """The invoice as it is first stored: priced, the tariff copied onto it, OPEN, no payment yet."""
    session = bill.session
    tariff = _tariff_for(deps, tariff_doc)
    usage = Usage(energy_kwh=session["energyKwh"], duration_seconds=Decimal(session["durationMinutes"] * 60),
                  idle_minutes=session.get("idleMinutes") or 0)
    priced = price(tariff, usage)
    return {
        "_id": bill.invoice_id, "sessionId": bill.session_id, "userId": bill.user_id,
        "stationId": session["stationId"], "status": "OPEN", "currency": priced.currency,
        "lines": [line.to_document() for line in priced.lines], "netCents": to_cents(priced.net),
        "vatCents": to_cents(priced.vat), "totalCents": to_cents(priced.total), "vatRate": str(priced.vat_rate),
        "tariff": tariff.to_document(), "issuedAt": now,
        "usage": {"energyKwh": str(usage.energy_kwh), "durationMinutes": session["durationMinutes"],
                  "idleMinutes": usage.idle_minutes, "endedAt": session["endedAt"]},
    }


_PIPELINE: tuple[Callable[[BillingDeps, list[SessionBill]], None], ...] = (
    read_invoices, plausibility.check_times, settlement.read_wallets, plausibility.check_users, issue_invoices,
    settlement.read_wallets, settlement.debit, settlement.record_entries,
    settlement.settle, settlement.clear_pending, invoice_events.publish, invoice_events.mark_published,
)
