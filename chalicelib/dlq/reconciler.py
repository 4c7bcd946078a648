"""Decide what happens to each dead letter, do it, and write it down.

Decision by cause and attempt history. The cause is read from the body and the
attributes, never from the reason text: ``errorType`` (the class the consumer raised,
see :mod:`chalicelib.contracts.errors`), then ``failureClass`` (see :func:`classify`).
- transient (SQS moved it after maxReceiveCount, a bus target gave up) and fewer
  than ``redrive_limit`` re-drives so far: send it back to its source queue with
  ``redriveCount + 1`` and a delay that doubles per re-drive. A session whose wallet is
  not open yet arrives this way: billing raises the transient ``WalletNotOpen`` until
  the last receive of the last re-drive, so SQS moves it here without attributes. A letter
  that names ``errorType=WalletNotOpen`` (our runner never sends one: it dead-letters only
  permanent errors) is read as early too, whatever its ``failureClass``;
- permanent (invalid or unparseable payload, a permanent ``errorType`` or the
  consumer's permanent verdict, or still transient after the bounded re-drives): a ``SESSION_ENDED`` gets a
  compensating ``BILLING_FAILED`` so the session service and support can act;
  anything else is parked. Parked and compensated letters keep their (PII
  scrubbed) body in the audit so ``dlq replay`` can send them again after a fix.

Only what the Session Service published is compensated: the body's ``source`` must be its
trusted source (``trusted_sources(session_source)[SESSION_ENDED]``, the one the bus rule and
the batch runner check). Attributes alone never decide it: anyone who can send to a queue
sets them, and a letter SQS moved by its own redrive carries none. A letter from any other
source is parked, with or without an ``errorType=UntrustedSource``: a ``BILLING_FAILED``
would reach the user a forger named.

A ``SESSION_ENDED`` whose session already has an invoice is never compensated:
billing may have debited the wallet already, so ``BILLING_FAILED`` would be a
lie and the invoice's own events would never be sent. Its invoice, as billing's
published ``invoice_state`` reports it, decides (one of another user's does not
count: the sessionId was re-used, see :func:`chalicelib.dlq.repository.invoice_for`):
- events published: the session is billed, nothing to do (``already-billed``);
- events not yet published (bus down for longer than the retries, or a store
  error after the debit): re-driven like a transient failure, because
  ``bill_session`` resumes from whatever step it reached and publishes; past
  ``redrive_limit`` it is parked as ``billed-events-pending`` (metric
  ``DeadLetterParked``, so the parked alarm fires): on-call fixes the bus, then
  ``dlq replay --execute`` sends it back and billing publishes.

Handled once: the decision is claimed in ``dead_letters`` under a deterministic
key before acting and marked done after. A redelivered, already done letter is
a no-op; a letter whose earlier attempt crashed between claim and done is acted
on again, which is safe because a re-drive only adds one more delivery of an
idempotent message and ``BILLING_FAILED`` carries an event id derived from the
session.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from chalicelib.contracts.errors import SessionReused, UntrustedSource, WalletNotOpen
from chalicelib.contracts.events import BILLING_FAILED, SESSION_ENDED, derived_event_id, trusted_sources
from chalicelib.dlq.letters import (
    ATTR_REDRIVE_COUNT,
    ATTR_REPLAY_COUNT,
    ATTR_SOURCE_QUEUE,
    PERMANENT,
    TRANSIENT,
    DeadLetter,
    Reading,
    letter_key,
    read_body,
    source_queue_of,
    storable_body,
)
from chalicelib.dlq.queues import QueuePort
from chalicelib.dlq.repository import DONE, DeadLetterRepository, InvoiceLookup, invoice_for
from chalicelib.events.consumer import PERMANENT_ERRORS
from chalicelib.events.publisher import OutgoingEvent, Publisher
from chalicelib.events.queues import SQS_MAX_DELAY_SECONDS

REDRIVEN = "redriven"
BILLING_FAILED_ACTION = "billing_failed"
PARKED = "parked"
DUPLICATE = "duplicate"
BILLED_EVENTS_PENDING = "billed-events-pending"
ALREADY_BILLED = "already-billed"

# Metric per action, emitted by the entry point.
ACTION_METRICS = {
    REDRIVEN: "DeadLetterRedriven",
    BILLING_FAILED_ACTION: "BillingFailed",
    PARKED: "DeadLetterParked",
    DUPLICATE: "DeadLetterDuplicate",
    # Parked for a person (the bus must be fixed, then replay): counts as parked so its alarm fires.
    BILLED_EVENTS_PENDING: "DeadLetterParked",
    ALREADY_BILLED: "DeadLetterAlreadyApplied",
}

# errorTypes that mean "too early", not "wrong", whatever failureClass says: the wallet is
# opened by choreography (USER_REGISTERED) and may simply not exist yet. Defensive: the batch
# runner never dead-letters a transient error, so a late wallet comes without attributes.
EARLY_ERROR_TYPES = {WalletNotOpen.__name__: "wallet not open yet (may be early)"}
# errorTypes retrying cannot fix: the batch runner's permanent classes and their named cases.
PERMANENT_ERROR_TYPES = frozenset({*(cls.__name__ for cls in PERMANENT_ERRORS), SessionReused.__name__,
                                   UntrustedSource.__name__})


@dataclass(frozen=True)
class Decision:
    key: str
    action: str
    failure_class: str
    reason: str
    event_type: str | None = None
    business_key: dict[str, str] | None = None
    error_type: str | None = None


class Cause(NamedTuple):
    """Why a letter died, as far as the body and the attributes tell."""

    failure_class: str
    reason: str
    error_type: str | None


def classify(letter: DeadLetter, reading: Reading) -> Cause:
    """Failure class and reason from the body, ``errorType`` and ``failureClass``; the reason text is only repeated.

    In order: a body that fails the contract is permanent; an early ``errorType`` is
    transient; a permanent ``errorType`` or ``failureClass=permanent`` is permanent;
    anything else (no attributes: SQS moved it after its receives; a bus target's
    ``ERROR_CODE``) is transient.
    """
    error_type = letter.error_type
    if reading.problem:
        return Cause(PERMANENT, reading.problem, error_type)
    reason = letter.failure_reason
    if error_type in EARLY_ERROR_TYPES:
        return Cause(TRANSIENT, f"{EARLY_ERROR_TYPES[error_type]}: {reason or error_type}", error_type)
    if error_type in PERMANENT_ERROR_TYPES or letter.failure_class == PERMANENT:
        return Cause(PERMANENT, reason or f"consumer judged the message permanent ({error_type or 'no errorType'})",
                     error_type)
    return Cause(TRANSIENT, reason or "retries exhausted (moved by SQS after maxReceiveCount)", error_type)


def redrive_delay(base_seconds: int, redrive_count: int) -> int:
    """Seconds before the next re-drive is visible: base, 2x base, 4x base, ... capped by SQS."""
    return min(SQS_MAX_DELAY_SECONDS, base_seconds * (2 ** redrive_count))


class Reconciler:
    """One dead letter at a time: classify, act, audit. Takes all its ports as arguments."""

    def __init__(self, dead_letters: DeadLetterRepository, queues: QueuePort, publisher: Publisher,
                 clock: Callable[[], dt.datetime], *, invoice_states: InvoiceLookup, redrive_limit: int,
                 redrive_delay_seconds: int, session_source: str) -> None:
        """``session_source``: ``CoreSettings.session_event_source``, whose SESSION_ENDED may be compensated."""
        self.dead_letters = dead_letters
        self.queues = queues
        self.publisher = publisher
        self.invoice_states = invoice_states
        self.clock = clock
        self.redrive_limit = redrive_limit
        self.redrive_delay_seconds = redrive_delay_seconds
        self.trusted = trusted_sources(session_source)
        self.trusted_session_source = self.trusted[SESSION_ENDED]

    def handle(self, dlq: str, letter: DeadLetter) -> Decision:
        reading = read_body(letter.body)
        key = letter_key(dlq, letter, reading)
        failure_class, reason, error_type = classify(letter, reading)
        if self._untrusted(reading):  # a forgery: re-driving cannot help (the consumer refuses it), so park
            failure_class, reason = PERMANENT, f"source: not the publisher trusted for {reading.event_type}; {reason}"
        source = source_queue_of(dlq, letter)
        can_redrive = source is not None and letter.redrive_count < self.redrive_limit
        # A re-used sessionId's stored invoice belongs to another event (another user or usage), so it
        # never makes this letter "already billed": the letter itself was refused and is compensated.
        invoice = (invoice_for(self.invoice_states, reading.session_id, reading.user_id)
                   if reading.session_id and self._compensable(dlq, reading, error_type)
                   and error_type != SessionReused.__name__ else None)
        if invoice is not None and invoice.events_published:
            action, reason = ALREADY_BILLED, f"session already invoiced and its events published; letter said: {reason}"
        elif invoice is not None:
            action, failure_class, reason = self._billed_pending(letter, can_redrive, reason)
        elif failure_class == TRANSIENT and can_redrive:
            action = REDRIVEN
        else:
            if failure_class == TRANSIENT:
                reason = f"still failing after {letter.redrive_count} re-drive(s): {reason}"
                failure_class = PERMANENT
            action = BILLING_FAILED_ACTION if self._compensable(dlq, reading, error_type) else PARKED
        decision = Decision(key, action, failure_class, reason[:500], reading.event_type, reading.business_key(),
                            error_type)
        existing = self.dead_letters.claim(self._record(dlq, letter, reading, decision, source))
        if existing is not None and existing.get("status") == DONE:
            return Decision(key, DUPLICATE, existing.get("failureClass", failure_class), existing.get("reason", ""),
                            reading.event_type, reading.business_key(), error_type)
        result = self._act(decision, letter, reading, source)
        self.dead_letters.complete(key, {"result": result, "completedAt": self.clock()})
        return decision

    @staticmethod
    def _billed_pending(letter: DeadLetter, can_redrive: bool, reason: str) -> tuple[str, str, str]:
        """Invoice stored, events not published: deliver again (billing resumes), park past the limit."""
        why = f"invoice stored but its events are not published: {reason}"
        if can_redrive:
            return REDRIVEN, TRANSIENT, why
        return BILLED_EVENTS_PENDING, PERMANENT, f"still unpublished after {letter.redrive_count} re-drive(s); {why}"

    def _untrusted(self, reading: Reading) -> bool:
        """An event of a type we know whose body names another publisher than the one trusted for it."""
        expected = self.trusted.get(reading.event_type or "")
        return expected is not None and reading.source != expected

    def _compensable(self, dlq: str, reading: Reading, error_type: str | None) -> bool:
        """A billing letter of a session the Session Service published: a BILLING_FAILED reaches the named user,
        so the body's own ``source`` must be the trusted one, whatever the attributes say (or lack)."""
        return (dlq == "billing-dlq" and reading.event_type == SESSION_ENDED and reading.session_id is not None
                and reading.source == self.trusted_session_source and error_type != UntrustedSource.__name__)

    def _record(self, dlq: str, letter: DeadLetter, reading: Reading, decision: Decision,
                source: str | None) -> dict:
        return {
            "_id": decision.key,
            "kind": "decision",
            "queue": dlq,
            "messageId": letter.message_id,
            "sourceQueue": source,
            "eventType": reading.event_type,
            "originalEventId": reading.original_event_id,
            "businessKey": decision.business_key,
            "failureClass": decision.failure_class,
            "errorType": decision.error_type,
            "reason": decision.reason,
            "action": decision.action,
            "redriveCount": letter.redrive_count,
            "replayCount": letter.replay_count,
            "parked": decision.action not in (REDRIVEN, ALREADY_BILLED),
            "body": storable_body(letter.body) if decision.action not in (REDRIVEN, ALREADY_BILLED) else None,
            "decidedAt": self.clock(),
        }

    def _act(self, decision: Decision, letter: DeadLetter, reading: Reading, source: str | None) -> dict:
        if decision.action == REDRIVEN:
            assert source is not None
            count = letter.redrive_count + 1
            attributes = {ATTR_REDRIVE_COUNT: str(count), ATTR_SOURCE_QUEUE: source}
            if letter.replay_count:
                attributes[ATTR_REPLAY_COUNT] = str(letter.replay_count)
            delay = redrive_delay(self.redrive_delay_seconds, letter.redrive_count)
            message_id = self.queues.send(source, letter.body, attributes, delay_seconds=delay)
            return {"sentTo": source, "messageId": message_id, "redriveCount": count, "delaySeconds": delay}
        if decision.action == BILLING_FAILED_ACTION:
            assert reading.session_id is not None
            event = OutgoingEvent(
                BILLING_FAILED,
                {"sessionId": reading.session_id, "userId": reading.user_id, "reason": decision.reason,
                 "originalEventId": reading.original_event_id, "failedAt": self.clock()},
                # Same session, same life (replay generation): same event id, so downstream dedups a retry.
                event_id=derived_event_id(BILLING_FAILED, f"{reading.session_id}:p{letter.replay_count}"),
            )
            published = self.publisher.publish([event], correlation_id=reading.original_event_id)
            return {"published": BILLING_FAILED, "eventId": published[0]["eventId"]}
        if decision.action == ALREADY_BILLED:
            return {"alreadyBilled": True}
        return {"parked": True}
