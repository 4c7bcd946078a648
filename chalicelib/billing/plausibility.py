"""Which SESSION_ENDED billing believes: the rules a session passes before anything is stored or debited.

Anyone who can put an event on the bus, or a producer with a bug, could otherwise bill a
session that ended years ago or after now, bill a user nobody registered, or change what a
stored session means by re-using its id. Each refusal is a ``PermanentError`` whose message
names the rule, never the value: it becomes the dead letter's ``failureReason``, then the
``BILLING_FAILED`` reason and the audit record of the DLQ reconciler.

- **When**: checked only for a session that has no invoice yet, against the injected clock.
  A stored invoice resumes whatever its age, because a delivery that comes back late (a
  replay after an outage) must still finish what an earlier one started.
- **Who**: billing knows a user by their wallet (auth's collections are auth's). The
  registration may simply be late, so a missing wallet is transient (``WalletNotOpen``) until
  the session's last chance: the last receive of the reconciler's last re-drive
  (``SessionRequest.final_attempt``, see ``entry.last_chance``).
- **Re-use**: a stored invoice, or an earlier delivery of the same batch, with another user
  or other usage. An identical redelivery passes: that is how every step stays idempotent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from chalicelib.billing.policy import BillingDeps, BillingPolicy, ms
from chalicelib.billing.session_state import SessionBill, active
from chalicelib.contracts.errors import PermanentError, SessionReused, WalletNotOpen

TOO_OLD = "implausible session: endedAt is older than SESSION_MAX_AGE_DAYS allows"
AHEAD = "implausible session: endedAt is later than the clock plus SESSION_CLOCK_SKEW_SECONDS"
UNKNOWN_USER = "implausible session: unknown user, no wallet for its userId after the last re-drive"
OTHER_USER = "a re-used sessionId: already billed for another user"
OTHER_USAGE = "a re-used sessionId: already billed with other usage"

# What a session consumed, as billing prices it: a redelivery must carry the same.
USAGE_FIELDS = ("stationId", "energyKwh", "durationMinutes", "idleMinutes", "endedAt")


class SessionImplausible(PermanentError):
    """The session ended too long ago, after now, or for a user billing does not know: never billed.

    Its own class so the dead letter's ``errorType`` (and the audit record) says which kind of
    refusal this is; the batch runner marks it ``failureClass=permanent``, which is what the
    reconciler compensates on.
    """


def timing_problem(ended_at: dt.datetime, now: dt.datetime, policy: BillingPolicy) -> str | None:
    """The rule ``endedAt`` breaks, or None: not older than the maximum age, not ahead beyond the skew."""
    ended_at = ms(ended_at)
    if ended_at < now - policy.max_session_age:
        return TOO_OLD
    if ended_at > now + policy.clock_skew:
        return AHEAD
    return None


def check_times(deps: BillingDeps, bills: list[SessionBill]) -> None:
    """Refuse new sessions that ended too long ago or in the future (no store call)."""
    new = [bill for bill in active(bills) if bill.invoice is None]
    if not new:
        return
    now = deps.now()
    for bill in new:
        if (problem := timing_problem(bill.session["endedAt"], now, deps.policy)) is not None:
            bill.error = SessionImplausible(problem)


def missing_wallet(bill: SessionBill) -> Exception:
    """No wallet for the session's user: maybe not registered *yet* (retry, re-drive), on the last chance: unknown."""
    if bill.request.final_attempt:
        return SessionImplausible(UNKNOWN_USER)
    return WalletNotOpen("wallet not open yet for this session's user; retrying")


def check_users(deps: BillingDeps, bills: list[SessionBill]) -> None:
    """New sessions of a user without a wallet get no invoice: retried, and refused on the last chance.

    Runs after ``settlement.read_wallets``, so it costs no store call of its own.
    """
    for bill in active(bills):
        if bill.invoice is None and bill.wallet_open is False:
            bill.error = missing_wallet(bill)


def usage_of_event(session: Mapping[str, Any]) -> dict[str, Any]:
    return {"stationId": session["stationId"], "energyKwh": session["energyKwh"],
            "durationMinutes": session["durationMinutes"], "idleMinutes": session.get("idleMinutes") or 0,
            "endedAt": ms(session["endedAt"])}


def usage_of_invoice(invoice: Mapping[str, Any]) -> dict[str, Any]:
    """The usage copied onto a stored invoice; a part that is missing or unreadable compares unequal."""
    usage = invoice.get("usage") or {}
    try:
        energy: Decimal | None = Decimal(str(usage.get("energyKwh")))
    except InvalidOperation:
        energy = None
    ended = usage.get("endedAt")
    return {"stationId": invoice.get("stationId"), "energyKwh": energy,
            "durationMinutes": usage.get("durationMinutes"), "idleMinutes": usage.get("idleMinutes") or 0,
            "endedAt": ms(ended) if isinstance(ended, dt.datetime) else None}


def reuse_problem(session: Mapping[str, Any], user_id: Any, usage: Mapping[str, Any]) -> SessionReused | None:
    """Why ``session`` is not the one billed as (``user_id``, ``usage``), or None if it is the same session.

    Names the fields that differ, never their values.
    """
    if user_id != session["userId"]:
        return SessionReused(OTHER_USER)
    mine = usage_of_event(session)
    differing = [name for name in USAGE_FIELDS if mine[name] != usage.get(name)]
    return SessionReused(f"{OTHER_USAGE} ({', '.join(differing)})") if differing else None
