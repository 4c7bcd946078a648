"""What a dead letter is and what it says about itself (pure, no I/O).

A dead letter reaches us in one of two shapes: a Lambda SQS record (the
reconciler) or a boto3 ``receive_message`` message (the operator CLI). Both
carry the original body (an EventBridge event JSON) and the attributes that
tell why it died: ``failureClass=permanent`` + ``errorType`` (the class the handler
raised, a name from :mod:`chalicelib.contracts.errors` or the store's) +
``failureReason`` (text for a person) + ``sourceQueue`` when the consumer judged it
hopeless, nothing when SQS moved it after ``maxReceiveCount`` receives (transient,
retries exhausted), ``ERROR_CODE`` / ``ERROR_MESSAGE`` when an EventBridge target or
Lambda async invocation gave up.
``redriveCount`` and ``replayCount`` travel with messages we send back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.contracts.errors import ValidationError
from chalicelib.contracts.events import EVENT_SCHEMAS, Event, parse_event
from chalicelib.events.queues import ATTR_REDRIVE_COUNT
from chalicelib.observability.logs import scrub
from chalicelib.topology import QUEUES

PERMANENT = "permanent"
TRANSIENT = "transient"
UNPARSEABLE = "unparseable"

# Attribute names agreed with the consumers (billing) and the reconciler; ATTR_REDRIVE_COUNT is the
# delivery layer's (chalicelib.events.queues), since billing reads it too.
ATTR_FAILURE_CLASS = "failureClass"
ATTR_FAILURE_REASON = "failureReason"
ATTR_ERROR_TYPE = "errorType"
ATTR_SOURCE_QUEUE = "sourceQueue"
ATTR_REPLAY_COUNT = "replayCount"
ATTR_ORIGINAL_MESSAGE_ID = "originalMessageId"
# Set by EventBridge target DLQs and Lambda async-invocation DLQs.
_FOREIGN_ERROR_ATTRS = ("ERROR_MESSAGE", "ErrorMessage", "ERROR_CODE", "ErrorCode")

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MAX_STORED_BODY = 16 * 1024
_CLASS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")


def _attr_value(value: Mapping[str, Any]) -> str | None:
    # Lambda records use camelCase keys, boto3 messages PascalCase.
    return value.get("stringValue", value.get("StringValue"))


def _int(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


@dataclass(frozen=True)
class DeadLetter:
    """One message read from a dead-letter queue, in either shape."""

    message_id: str
    body: str
    attributes: dict[str, str] = field(default_factory=dict)
    receipt_handle: str | None = None
    sent_at: dt.datetime | None = None
    receive_count: int = 1

    @classmethod
    def from_lambda_record(cls, record: Mapping[str, Any]) -> DeadLetter:
        return cls._build(record["messageId"], record.get("body") or "", record.get("messageAttributes") or {},
                          record.get("receiptHandle"), record.get("attributes") or {})

    @classmethod
    def from_sqs_message(cls, message: Mapping[str, Any]) -> DeadLetter:
        return cls._build(message["MessageId"], message.get("Body") or "", message.get("MessageAttributes") or {},
                          message.get("ReceiptHandle"), message.get("Attributes") or {})

    @classmethod
    def _build(cls, message_id: str, body: str, raw_attrs: Mapping[str, Any], receipt: str | None,
               sys_attrs: Mapping[str, str]) -> DeadLetter:
        attrs = {name: v for name, raw in raw_attrs.items() if (v := _attr_value(raw)) is not None}
        sent = sys_attrs.get("SentTimestamp")
        sent_at = dt.datetime.fromtimestamp(int(sent) / 1000, dt.UTC) if sent and sent.isdigit() else None
        return cls(message_id, body, attrs, receipt, sent_at, _int(sys_attrs.get("ApproximateReceiveCount")) or 1)

    @property
    def failure_class(self) -> str | None:
        return self.attributes.get(ATTR_FAILURE_CLASS)

    @property
    def error_type(self) -> str | None:
        """The class name the consumer's handler raised (what the reconciler classifies on).

        Anything but a plain class name (anyone who can send to the queue sets attributes)
        counts as absent, so it never reaches the audit or the logs.
        """
        value = self.attributes.get(ATTR_ERROR_TYPE)
        return value if value and _CLASS_NAME.fullmatch(value) else None

    @property
    def failure_reason(self) -> str | None:
        reason = self.attributes.get(ATTR_FAILURE_REASON)
        if reason:
            return reason
        foreign = [self.attributes[a] for a in _FOREIGN_ERROR_ATTRS if self.attributes.get(a)]
        return ": ".join(foreign) if foreign else None

    @property
    def redrive_count(self) -> int:
        return _int(self.attributes.get(ATTR_REDRIVE_COUNT))

    @property
    def replay_count(self) -> int:
        return _int(self.attributes.get(ATTR_REPLAY_COUNT))

    @property
    def md5(self) -> str:
        return hashlib.md5(self.body.encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class Reading:
    """What the body says: event type, bus event id, who published it, ids for the audit, what is wrong with it."""

    event_type: str | None
    bus_event_id: str | None
    detail: dict[str, Any] | None
    event: Event | None
    problem: str | None  # None = valid against the current contract
    problem_class: str | None = None  # UNPARSEABLE or "invalid"
    # The bus event's ``source``: the reconciler compensates only what the trusted publisher sent.
    source: str | None = None

    @property
    def session_id(self) -> str | None:
        return _id_field(self.detail, "sessionId")

    @property
    def user_id(self) -> str | None:
        return _id_field(self.detail, "userId")

    @property
    def original_event_id(self) -> str | None:
        """The producer's eventId when it sent one, else the bus event id."""
        if self.event is not None and self.event.event_id:
            return self.event.event_id
        declared = _id_field(self.detail, "eventId")
        return declared or self.bus_event_id

    def business_key(self) -> dict[str, str]:
        """Ids only (no PII): what the audit and the logs may carry."""
        return {k: v for k, v in (("sessionId", self.session_id), ("userId", self.user_id)) if v}


def _id_field(detail: Mapping[str, Any] | None, name: str) -> str | None:
    value = detail.get(name) if isinstance(detail, Mapping) else None
    return value if isinstance(value, str) and _UUID.match(value) else None


def read_body(body: str) -> Reading:
    """Parse an EventBridge event JSON and validate its detail against the current contract."""
    try:
        data = json.loads(body)
    except ValueError:
        return Reading(None, None, None, None, "unparseable: body is not JSON", UNPARSEABLE)
    if not isinstance(data, dict) or not isinstance(data.get("detail"), dict):
        return Reading(None, None, None, None, "unparseable: not an EventBridge event with a detail object",
                       UNPARSEABLE)
    detail_type = data.get("detail-type")
    bus_id = data.get("id") if isinstance(data.get("id"), str) else None
    source = data.get("source") if isinstance(data.get("source"), str) else None
    detail = data["detail"]
    if detail_type not in EVENT_SCHEMAS:
        return Reading(str(detail_type)[:100] if detail_type else None, bus_id, detail, None,
                       f"unparseable: unknown event type {str(detail_type)[:100]!r}", UNPARSEABLE, source)
    try:
        event = parse_event(detail_type, detail)
    except ValidationError as exc:
        return Reading(detail_type, bus_id, detail, None, f"invalid payload: {exc}"[:500], "invalid", source)
    return Reading(detail_type, bus_id, detail, event, None, source=source)


def source_queue_of(dlq: str, letter: DeadLetter) -> str | None:
    """The queue a dead letter came from: its attribute, else the topology's redrive source."""
    named = letter.attributes.get(ATTR_SOURCE_QUEUE)
    known = {q.short for q in QUEUES if not q.is_dlq}
    if named in known:
        return named
    for spec in QUEUES:
        if spec.dlq == dlq:
            return spec.short
    return None


def letter_key(dlq: str, letter: DeadLetter, reading: Reading) -> str:
    """Audit ``_id``: the same dead letter delivered twice maps to the same key.

    The bus event id (or the body's md5 when there is none) plus where the
    message is in its history: each re-drive and each replay is a new life.
    Two copies of one dead letter (SQS at-least-once, a consumer that sent it
    twice) share the key; so do two bus deliveries of one event.
    """
    origin = reading.bus_event_id or reading.original_event_id or f"md5-{letter.md5}"
    key = f"{dlq}:{origin}:r{letter.redrive_count}:p{letter.replay_count}"
    # The batch runner dead-letters a permanent failure with the source message's id but
    # without ``replayCount``: that id tells a replay that failed again from its original.
    source_message = letter.attributes.get(ATTR_ORIGINAL_MESSAGE_ID)
    return f"{key}:{source_message}" if source_message else key


def storable_body(body: str) -> Any:
    """The body as the audit keeps it for replay: JSON scrubbed of PII keys, bounded in size."""
    try:
        data = json.loads(body)
    except ValueError:
        return scrub(body[:MAX_STORED_BODY])
    if len(body) > MAX_STORED_BODY:
        return {"truncated": True, "md5": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()}
    return scrub(data)
