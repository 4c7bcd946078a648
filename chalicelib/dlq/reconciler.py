"""Decide what happens to each dead letter, do it, and write it down.

Decision by cause and attempt history:
- transient (SQS moved it after maxReceiveCount, a bus target gave up, or the
  consumer said the user's wallet is not open yet, which may just mean early)
  and fewer than ``redrive_limit`` re-drives so far: send it back to its source
  queue with ``redriveCount + 1`` and a delay that doubles per re-drive;
- permanent (invalid or unparseable payload, the consumer's permanent verdict,
  or still transient after the bounded re-drives): a ``SESSION_ENDED`` gets a
  compensating ``BILLING_FAILED`` so the session service and support can act;
  anything else is parked. Parked and compensated letters keep their (PII
  scrubbed) body in the audit so ``dlq replay`` can send them again after a fix.

A ``SESSION_ENDED`` whose session already has an invoice is never compensated:
billing may have debited the wallet already, so ``BILLING_FAILED`` would be a
lie and the invoice's own events would never be sent. Its invoice decides:
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

from chalicelib.contracts.events import BILLING_FAILED, SESSION_ENDED, derived_event_id
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
from chalicelib.dlq.queues import SQS_MAX_DELAY, QueuePort
from chalicelib.dlq.repository import DONE, EVENTS_PENDING, EVENTS_PUBLISHED, DeadLetterRepository, InvoiceLookup
from chalicelib.events.publisher import OutgoingEvent, Publisher

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

# A consumer's reason that means "too early", not "wrong": the wallet is opened
# by choreography (USER_REGISTERED) and may simply not exist yet.
_EARLY_MARKERS = ("wallet_not_found", "wallet not found", "wallet not open", "walletnotopen")


@dataclass(frozen=True)
class Decision:
    key: str
    action: str
    failure_class: str
    reason: str
    event_type: str | None = None
    business_key: dict[str, str] | None = None


def _is_early(reason: str | None) -> bool:
    lowered = (reason or "").lower()
    return any(marker in lowered for marker in _EARLY_MARKERS)


def classify(letter: DeadLetter, reading: Reading) -> tuple[str, str]:
    """(failure class, reason) from the body and the attributes alone."""
    if reading.problem:
        return PERMANENT, reading.problem
    reason = letter.failure_reason
    if letter.failure_class == PERMANENT and not _is_early(reason):
        return PERMANENT, reason or "consumer judged the message permanent"
    if _is_early(reason):
        return TRANSIENT, f"wallet not open yet (may be early): {reason}"
    return TRANSIENT, reason or "retries exhausted (moved by SQS after maxReceiveCount)"


def redrive_delay(base_seconds: int, redrive_count: int) -> int:
    """Seconds before the next re-drive is visible: base, 2x base, 4x base, ... capped by SQS."""
    return min(SQS_MAX_DELAY, base_seconds * (2 ** redrive_count))


class Reconciler:
    """One dead letter at a time: classify, act, audit. Takes all its ports as arguments."""

    def __init__(self, dead_letters: DeadLetterRepository, queues: QueuePort, publisher: Publisher,
                 clock: Callable[[], dt.datetime], *, invoices: InvoiceLookup, redrive_limit: int,
                 redrive_delay_seconds: int) -> None:
        self.dead_letters = dead_letters
        self.queues = queues
        self.publisher = publisher
        self.invoices = invoices
        self.clock = clock
        self.redrive_limit = redrive_limit
        self.redrive_delay_seconds = redrive_delay_seconds

    def handle(self, dlq: str, letter: DeadLetter) -> Decision:
        reading = read_body(letter.body)
        key = letter_key(dlq, letter, reading)
        failure_class, reason = classify(letter, reading)
        source = source_queue_of(dlq, letter)
        can_redrive = source is not None and letter.redrive_count < self.redrive_limit
        session_id = reading.session_id
        invoice = self.invoices.invoice_state(session_id) if session_id and self._compensable(dlq, reading) else None
        if invoice == EVENTS_PUBLISHED:
            action, reason = ALREADY_BILLED, f"session already invoiced and its events published; letter said: {reason}"
        elif invoice == EVENTS_PENDING:
            action, failure_class, reason = self._billed_pending(letter, can_redrive, reason)
        elif failure_class == TRANSIENT and can_redrive:
            action = REDRIVEN
        else:
            if failure_class == TRANSIENT:
                reason = f"still failing after {letter.redrive_count} re-drive(s): {reason}"
                failure_class = PERMANENT
            action = BILLING_FAILED_ACTION if self._compensable(dlq, reading) else PARKED
        decision = Decision(key, action, failure_class, reason[:500], reading.event_type, reading.business_key())
        existing = self.dead_letters.claim(self._record(dlq, letter, reading, decision, source))
        if existing is not None and existing.get("status") == DONE:
            return Decision(key, DUPLICATE, existing.get("failureClass", failure_class), existing.get("reason", ""),
                            reading.event_type, reading.business_key())
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

    @staticmethod
    def _compensable(dlq: str, reading: Reading) -> bool:
        return dlq == "billing-dlq" and reading.event_type == SESSION_ENDED and reading.session_id is not None

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
