"""Versioned domain events: payload schemas, envelope metadata, parsing.

On the bus an event is ``Source = jucr.<service>``, ``DetailType`` = the type,
``Detail`` = payload + ``eventId``, ``schemaVersion``, ``occurredAt`` (+
``idempotencyKey`` for billing writes, ``correlationId`` for tracing).
Producers that predate the envelope (the Session Service's seed payloads) send
none of these: no ``schemaVersion`` means version 1. Fields added within a
version are tolerated and dropped (``unknown = EXCLUDE``); an unknown version is
refused. A v2 ships as a new schema in ``EVENT_SCHEMAS`` beside v1.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate
from marshmallow import ValidationError as MarshmallowError

from chalicelib.contracts.errors import ValidationError
from chalicelib.contracts.fields import JsonDecimal, Money, StrictInteger, UtcDateTime, UuidString, iso_utc

SESSION_ENDED = "SESSION_ENDED"
USER_REGISTERED = "USER_REGISTERED"
INVOICE_GENERATED = "INVOICE_GENERATED"
PAYMENT_COMPLETED = "PAYMENT_COMPLETED"
PAYMENT_FAILED = "PAYMENT_FAILED"
BILLING_FAILED = "BILLING_FAILED"
OCM_SYNC_COMPLETED = "OCM_SYNC_COMPLETED"

# Namespace for event ids derived from business keys (so a retried publish of
# the same fact carries the same eventId and downstream can recognise it).
EVENT_ID_NAMESPACE = uuid.UUID("8f5c0f3e-2b1a-4c7e-9a61-5d1c1f0e7a42")


def derived_event_id(event_type: str, business_key: str) -> str:
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{event_type}:{business_key}"))


class _EventSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    # Envelope metadata, optional for version 1 producers.
    eventType = fields.String()
    eventId = UuidString()
    schemaVersion = StrictInteger(validate=validate.Range(min=1))
    occurredAt = UtcDateTime()
    idempotencyKey = fields.String(validate=validate.Length(1, 200))
    correlationId = fields.String(validate=validate.Length(1, 200))


_id = dict(required=True)
_text = dict(required=True, validate=validate.Length(1, 200))


class SessionEndedV1(_EventSchema):
    sessionId = UuidString(**_id)
    userId = UuidString(**_id)
    stationId = fields.String(**_text)
    energyKwh = JsonDecimal(required=True, minimum=Decimal("0"), maximum=Decimal("10000"))
    durationMinutes = StrictInteger(required=True, validate=validate.Range(min=0, max=60 * 24 * 14))
    endedAt = UtcDateTime(required=True)
    idleMinutes = StrictInteger(validate=validate.Range(min=0, max=60 * 24 * 14))


class UserRegisteredV1(_EventSchema):
    userId = UuidString(**_id)
    registeredAt = UtcDateTime(required=True)


class InvoiceGeneratedV1(_EventSchema):
    invoiceId = UuidString(**_id)
    invoiceNumber = fields.String(**_text)
    sessionId = UuidString(**_id)
    userId = UuidString(**_id)
    stationId = fields.String(**_text)
    currency = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{3}$"))
    net = Money(required=True)
    vat = Money(required=True)
    total = Money(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["OPEN", "PAID"]))
    issuedAt = UtcDateTime(required=True)


class _PaymentV1(_EventSchema):
    """What a payment's outcome says in either case: whose invoice, for which session, how much."""

    invoiceId = UuidString(**_id)
    sessionId = UuidString(**_id)
    userId = UuidString(**_id)
    amount = Money(required=True)
    currency = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{3}$"))


class PaymentCompletedV1(_PaymentV1):
    paidAt = UtcDateTime(required=True)


class PaymentFailedV1(_PaymentV1):
    reason = fields.String(required=True, validate=validate.OneOf(["INSUFFICIENT_FUNDS", "WALLET_NOT_FOUND"]))
    failedAt = UtcDateTime(required=True)


class BillingFailedV1(_EventSchema):
    sessionId = fields.String(required=True, validate=validate.Length(1, 200))
    userId = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 200))
    reason = fields.String(required=True, validate=validate.Length(1, 500))
    originalEventId = fields.String(load_default=None, allow_none=True)
    failedAt = UtcDateTime(required=True)


class OcmSyncCompletedV1(_EventSchema):
    # Required here, unlike the envelope of other events: the seed payload carries it and
    # the worker's CLI prints the payload alone, so the line must say what it is.
    eventType = fields.String(required=True, validate=validate.OneOf([OCM_SYNC_COMPLETED]))
    source = fields.String(required=True, validate=validate.Length(1, 100))
    startedAt = UtcDateTime(required=True)
    finishedAt = UtcDateTime(required=True)
    processed = StrictInteger(required=True, validate=validate.Range(min=0))
    updated = StrictInteger(required=True, validate=validate.Range(min=0))
    failed = StrictInteger(required=True, validate=validate.Range(min=0))
    inserted = StrictInteger(validate=validate.Range(min=0))
    removed = StrictInteger(validate=validate.Range(min=0))
    mode = fields.String(validate=validate.OneOf(["incremental", "full"]))
    complete = fields.Boolean()


EVENT_SCHEMAS: dict[str, dict[int, type[Schema]]] = {
    SESSION_ENDED: {1: SessionEndedV1},
    USER_REGISTERED: {1: UserRegisteredV1},
    INVOICE_GENERATED: {1: InvoiceGeneratedV1},
    PAYMENT_COMPLETED: {1: PaymentCompletedV1},
    PAYMENT_FAILED: {1: PaymentFailedV1},
    BILLING_FAILED: {1: BillingFailedV1},
    OCM_SYNC_COMPLETED: {1: OcmSyncCompletedV1},
}

# Which service publishes which event: the bus ``Source`` is ``jucr.<service>``.
EVENT_SOURCES: dict[str, str] = {
    SESSION_ENDED: "jucr.session",
    USER_REGISTERED: "jucr.auth",
    INVOICE_GENERATED: "jucr.billing",
    PAYMENT_COMPLETED: "jucr.billing",
    PAYMENT_FAILED: "jucr.billing",
    BILLING_FAILED: "jucr.dlq",
    OCM_SYNC_COMPLETED: "jucr.ocm",
}


def trusted_sources(session_source: str) -> dict[str, str]:
    """Detail-type -> the one source trusted to publish it.

    The Session Service is the only producer outside this app, so its source is a setting
    (``SESSION_EVENT_SOURCE``, default the map's ``jucr.session``); the bus rules, the
    consumers' check, the publishing roles and the bus policy all read this one map.
    """
    return {**EVENT_SOURCES, SESSION_ENDED: session_source}

_ENVELOPE_KEYS = ("eventType", "eventId", "schemaVersion", "occurredAt", "idempotencyKey", "correlationId")


@dataclass(frozen=True)
class Event:
    """A validated event: its type, version, payload and envelope metadata."""

    event_type: str
    payload: dict[str, Any]
    event_id: str | None = None
    schema_version: int = 1
    occurred_at: dt.datetime | None = None
    idempotency_key: str | None = None
    correlation_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@cache
def _schema(event_type: str, version: int) -> Schema:
    """One schema instance per contract: building one costs more than loading an event with it.

    marshmallow schemas keep no per-call state, so the instance is shared by every call.
    """
    return EVENT_SCHEMAS[event_type][version]()


def parse_event(event_type: str | None, detail: Any) -> Event:
    """Validate a bus ``Detail`` against its contract; raise ``ValidationError`` naming fields."""
    if not isinstance(detail, Mapping):
        raise ValidationError("Invalid event: detail must be a JSON object", details={"detail": "not an object"})
    declared = detail.get("eventType")
    kind = event_type or declared
    if kind not in EVENT_SCHEMAS:
        # The sender's value is not repeated: it may be anything, of any length.
        raise ValidationError("Invalid event: eventType: unknown event type", details={"eventType": "unknown"})
    if declared is not None and declared != kind:
        raise ValidationError(
            f"Invalid event: eventType does not match the detail-type {kind}",
            details={"eventType": "mismatch"},
        )
    version = detail.get("schemaVersion", 1)
    versions = EVENT_SCHEMAS[kind]
    if isinstance(version, bool) or not isinstance(version, int) or version not in versions:
        raise ValidationError(
            f"Invalid event: schemaVersion: unsupported version of {kind} "
            f"(supported: {sorted(versions)})",
            details={"schemaVersion": "unsupported"},
        )
    try:
        data = _schema(kind, version).load(dict(detail))
    except MarshmallowError as exc:
        raise ValidationError.from_messages(exc.messages) from None
    meta = {k: data.pop(k, None) for k in _ENVELOPE_KEYS}
    return Event(
        event_type=kind,
        payload=data,
        event_id=meta["eventId"],
        schema_version=meta["schemaVersion"] or 1,
        occurred_at=meta["occurredAt"],
        idempotency_key=meta["idempotencyKey"],
        correlation_id=meta["correlationId"],
    )


def build_detail(
    event_type: str,
    payload: Mapping[str, Any],
    *,
    occurred_at: dt.datetime,
    event_id: str | None = None,
    idempotency_key: str | None = None,
    correlation_id: str | None = None,
) -> dict[str, Any]:
    """Serialise a payload into the bus ``Detail``, validating it on the way out.

    Publishing an event that would fail our own consumers is a bug, so the
    payload is checked against the current version before it leaves.
    """
    schema = _schema(event_type, max(EVENT_SCHEMAS[event_type]))
    detail = dict(schema.dump(payload))
    detail = {k: v for k, v in detail.items() if v is not None or k in payload}
    detail.update(
        eventType=event_type,
        eventId=event_id or str(uuid.uuid4()),
        schemaVersion=max(EVENT_SCHEMAS[event_type]),
        occurredAt=iso_utc(occurred_at),
    )
    if idempotency_key:
        detail["idempotencyKey"] = idempotency_key
    if correlation_id:
        detail["correlationId"] = correlation_id
    parse_event(event_type, detail)  # refuses to publish what consumers would refuse
    return detail
