"""What the reconciler's unit tests share: the seed session, dead letters and a recording queue port."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from chalicelib.billing.queries import InvoiceState
from chalicelib.dlq.letters import DeadLetter

T0 = dt.datetime(2026, 2, 21, 15, 0, tzinfo=dt.UTC)
SESSION = {"eventType": "SESSION_ENDED", "sessionId": "6fe27f6e-ff2d-4dda-9f86-3de70e1a4bbf",
           "userId": "0b1732fa-631a-4952-b6d6-2d586ed9dbf8", "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f",
           "energyKwh": 22.4, "durationMinutes": 58, "endedAt": "2026-02-21T14:31:00Z"}


def bus_body(detail: dict, detail_type: str = "SESSION_ENDED", bus_id: str = "bus-1",
             source: str | None = "jucr.session") -> str:
    """A bus event as a dead letter's body; ``source=None`` leaves the key out."""
    event = {"version": "0", "id": bus_id, "detail-type": detail_type, "source": source,
             "time": "2026-02-21T14:31:01Z", "detail": detail}
    return json.dumps({k: v for k, v in event.items() if k != "source" or source is not None})


def letter(body: str, message_id: str = "m-1", **attrs: str) -> DeadLetter:
    return DeadLetter.from_lambda_record({
        "messageId": message_id, "body": body, "receiptHandle": "rh",
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1771684260000"},
        "messageAttributes": {k: {"stringValue": v, "dataType": "String"} for k, v in attrs.items()},
    })


class RecordingQueues:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, short: str, body: str, attributes: dict[str, str], delay_seconds: int = 0) -> str:
        self.sent.append({"queue": short, "body": body, "attributes": attributes, "delay": delay_seconds})
        return f"sent-{len(self.sent)}"


def invoice(published: bool, user_id: str = SESSION["userId"]) -> InvoiceState:
    return InvoiceState(invoice_id="inv-1", user_id=user_id, status="PAID" if published else "OPEN",
                        events_published=published)


EVENTS_PENDING, EVENTS_PUBLISHED = invoice(False), invoice(True)
