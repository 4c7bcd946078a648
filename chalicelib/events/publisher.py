"""Put events on the custom bus: batched, enveloped, failed entries retried.

``put_events`` takes at most 10 entries and 256 KB per call and answers with a
per-entry result: a 200 can still carry failed entries. Those are retried with
exponential back-off; whatever still fails raises ``PublishError`` so the
caller's message is retried (at-least-once) instead of the event being lost.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.contracts.events import EVENT_SOURCES, build_detail
from chalicelib.observability.logs import logger

MAX_ENTRIES = 10
MAX_BATCH_BYTES = 256 * 1024


class PublishError(Exception):
    """Some events could not be put on the bus after all retries."""

    def __init__(self, message: str, failed: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.failed = failed


@dataclass(frozen=True)
class OutgoingEvent:
    """An event to publish; ``event_id`` derived from the business key where it matters."""

    event_type: str
    payload: Mapping[str, Any]
    event_id: str | None = None
    idempotency_key: str | None = None
    occurred_at: dt.datetime | None = None

    def detail(self, now: dt.datetime, correlation_id: str | None) -> dict[str, Any]:
        """The enveloped, validated bus ``Detail`` (shared by the real and the recording publisher)."""
        return build_detail(self.event_type, self.payload, occurred_at=self.occurred_at or now,
                            event_id=self.event_id, idempotency_key=self.idempotency_key,
                            correlation_id=correlation_id)


class Publisher(Protocol):
    def publish(self, events: Sequence[OutgoingEvent], *, correlation_id: str | None = None) -> list[dict]: ...


def _entry_size(entry: Mapping[str, Any]) -> int:
    # The size rule EventBridge applies: Source, DetailType, Detail, Resources, EventBusName.
    return sum(len(str(entry.get(k, "")).encode()) for k in ("Source", "DetailType", "Detail", "EventBusName")) + 14


def batches(entries: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Group entries into put_events calls of at most 10 entries and 256 KB."""
    out: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        entry_size = _entry_size(entry)
        if entry_size > MAX_BATCH_BYTES:
            raise PublishError(f"event {entry['DetailType']} is larger than 256 KB", [entry])
        if current and (len(current) == MAX_ENTRIES or size + entry_size > MAX_BATCH_BYTES):
            out.append(current)
            current, size = [], 0
        current.append(entry)
        size += entry_size
    if current:
        out.append(current)
    return out


@dataclass
class EventBridgePublisher:
    """Publishes to ``bus_name`` with the given boto3 ``events`` client."""

    client: Any
    bus_name: str
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    retries: int = 4
    base_delay: float = 0.1
    sleep: Callable[[float], None] = time.sleep
    calls: int = 0

    def entries(self, events: Sequence[OutgoingEvent], correlation_id: str | None) -> list[dict[str, Any]]:
        return [
            {
                "Source": EVENT_SOURCES[event.event_type],
                "DetailType": event.event_type,
                "Detail": json.dumps(event.detail(self.clock(), correlation_id), separators=(",", ":")),
                "EventBusName": self.bus_name,
            }
            for event in events
        ]

    def publish(self, events: Sequence[OutgoingEvent], *, correlation_id: str | None = None) -> list[dict]:
        """Publish all events or raise ``PublishError``; returns the details sent."""
        entries = self.entries(events, correlation_id)
        for batch in batches(entries):
            self._put_with_retry(batch)
        return [json.loads(e["Detail"]) for e in entries]

    def _put_with_retry(self, batch: list[dict[str, Any]]) -> None:
        pending = batch
        for attempt in range(self.retries + 1):
            self.calls += 1
            try:
                response = self.client.put_events(Entries=pending)
            except Exception as exc:  # botocore ClientError / EndpointConnectionError
                failed = [{"entry": e, "error": type(exc).__name__} for e in pending]
            else:
                results = response.get("Entries", [])
                if len(results) != len(pending):  # no per-entry verdict: assume none landed (ids are stable)
                    failed = [{"entry": e, "error": "MissingResult"} for e in pending]
                else:
                    failed = [{"entry": e, "error": r.get("ErrorCode", "Unknown")}
                              for e, r in zip(pending, results, strict=True) if r.get("ErrorCode")]
            if not failed:
                return
            pending = [f["entry"] for f in failed]
            logger.warning(
                "put_events had failed entries",
                extra={"failedCount": len(failed), "attempt": attempt + 1,
                       "errors": sorted({f["error"] for f in failed})},
            )
            if attempt < self.retries:
                self.sleep(self.base_delay * (2**attempt))
        raise PublishError(
            f"{len(pending)} event(s) not accepted by bus {self.bus_name} after {self.retries + 1} attempts",
            [{"DetailType": e["DetailType"]} for e in pending],
        )


@dataclass
class RecordingPublisher:
    """An in-memory publisher for unit tests of logic (a fake of our own port)."""

    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    published: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0

    def publish(self, events: Sequence[OutgoingEvent], *, correlation_id: str | None = None) -> list[dict]:
        if self.fail_next:
            self.fail_next -= 1
            raise PublishError("injected publish failure", [])
        details = [event.detail(self.clock(), correlation_id) for event in events]
        self.published.extend(details)
        return details

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [d for d in self.published if d["eventType"] == event_type]
