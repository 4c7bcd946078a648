"""The shared SQS batch runner: one record handler, partial failures, retry or dead-letter.

Every queue consumer (billing, wallets, the DLQ reconcilers) runs its records
through :func:`run_batch`, so failure handling is decided in one place:

- success: the record is reported done and Lambda deletes it;
- **permanent** failure (a contract ``ValidationError``, ``PermanentStoreError``,
  :class:`PermanentError`, a body that is not an event, an event whose ``source``
  is not the one the queue trusts for its detail-type, ``chalicelib/topology.py``):
  retrying cannot help, so the record is sent straight to the queue's DLQ with
  message attributes ``failureClass=permanent``, ``failureReason`` (no PII),
  ``sourceQueue``, ``errorType``, ``originalMessageId`` and ``redriveCount``
  (copied when the record had one), then reported done so it leaves the source
  queue. A queue without a DLQ keeps the record (reported failed);
- **transient** failure (anything else: ``TransientStoreError``,
  ``PublishError``, botocore errors, :class:`TransientError`, bugs): reported in
  ``batchItemFailures`` and its visibility set to
  ``min(cap, base * 2**(ApproximateReceiveCount-1))`` seconds (settings
  ``SQS_BACKOFF_BASE_SECONDS`` / ``SQS_BACKOFF_CAP_SECONDS``). After
  ``maxReceiveCount`` receives SQS's own redrive moves it to the DLQ *without*
  a ``failureClass`` attribute: the reconciler reads that as transient-exhausted.

Per record the logger carries ``correlation_id`` (the envelope's
``correlationId``, else ``eventId``, else the bus event ``id``), ``messageId``,
``sourceQueue`` and ``receiveCount``; the keys are cleared after each record.
The line saying how a record ended carries ``recordOutcome`` (here ``dead-lettered``
or ``retry``; consumers add ``billed``, ``wallet-opened``, ...), one field to count by
in Logs Insights. Metrics (flushed per batch, dimension ``queue``): ``RecordsSucceeded``,
``RecordsRetried``, ``RecordsDeadLettered``, ``EventLatencyMs`` (from ``occurredAt``,
else ``endedAt``, else the bus ``time``). Bodies are the EventBridge events a bus rule delivers
(``{"id","detail-type","source","time",...,"detail":{...}}``), read through Powertools' ``SQSRecord``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib.config import CoreSettings
from chalicelib.contracts.errors import PermanentError, TransientError, UntrustedSource, ValidationError
from chalicelib.contracts.events import Event, parse_event
from chalicelib.events.queues import ATTR_REDRIVE_COUNT, StageQueues
from chalicelib.events.settings import QueueSettings
from chalicelib.observability.logs import logger, scrub
from chalicelib.observability.metrics import MetricUnit, metrics
from chalicelib.store.errors import PermanentStoreError
from chalicelib.timestamps import parse_utc
from chalicelib.topology import QUEUES, accepted_sources

MAX_REASON_CHARS = 500


# PermanentError and TransientError live in contracts (their names travel as ``errorType``);
# handlers keep importing them from here.
__all__ = ["PERMANENT_ERRORS", "Delivery", "PermanentError", "TransientError", "backoff_seconds", "run_batch"]

PERMANENT_ERRORS: tuple[type[BaseException], ...] = (PermanentError, ValidationError, PermanentStoreError)


def _read(prop: Callable[[], Any], default: Any) -> Any:
    """An ``SQSRecord`` property, else ``default``: hand-built records (tests, the bench) may lack keys
    Lambda always sends, and a record we cannot read must still be classified, not crash the batch."""
    try:
        value = prop()
    except (KeyError, TypeError, ValueError):
        return default
    return default if value is None else value


@dataclass
class Delivery:
    """One SQS record as a record handler sees it: Powertools' ``SQSRecord`` and the bus event in its body."""

    sqs: SQSRecord = field(repr=False)
    source_queue: str
    message_id: str
    body: str
    receive_count: int
    message_attributes: dict[str, str]
    envelope: dict[str, Any] | None
    # Whose sources the queue trusts (chalicelib/topology.py); None = the composition root's.
    core: CoreSettings | None = field(repr=False, default=None)

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | SQSRecord, source_queue: str,
                    core: CoreSettings | None = None) -> Delivery:
        sqs = record if isinstance(record, SQSRecord) else SQSRecord(dict(record))
        envelope = _read(lambda: sqs.json_body, None)
        attributes = {name: value for name, attribute in _read(lambda: sqs.message_attributes, {}).items()
                      if (value := _read(lambda a=attribute: a.string_value, None)) is not None}
        return cls(sqs=sqs, source_queue=source_queue, message_id=str(_read(lambda: sqs.message_id, "")),
                   body=_read(lambda: sqs.body, ""),
                   receive_count=_read(lambda: int(sqs.attributes.approximate_receive_count), 1),
                   message_attributes=attributes, envelope=envelope if isinstance(envelope, dict) else None,
                   core=core)

    @property
    def record(self) -> dict[str, Any]:
        """The Lambda record as received (the reconciler reads a dead letter from it)."""
        return self.sqs.raw_event

    @property
    def receipt_handle(self) -> str | None:
        return _read(lambda: self.sqs.receipt_handle, None)

    @property
    def source(self) -> str | None:
        return (self.envelope or {}).get("source")

    @property
    def detail_type(self) -> str | None:
        return (self.envelope or {}).get("detail-type")

    @property
    def detail(self) -> Mapping[str, Any]:
        detail = (self.envelope or {}).get("detail")
        return detail if isinstance(detail, Mapping) else {}

    @property
    def correlation_id(self) -> str | None:
        detail = self.detail
        for value in (detail.get("correlationId"), detail.get("eventId"), (self.envelope or {}).get("id")):
            if isinstance(value, str) and value:
                return value
        return None

    def event(self, expected: str | None = None) -> Event:
        """The validated contract event in the body; permanent errors for anything else."""
        if self.envelope is None or "detail" not in self.envelope:
            raise PermanentError("message body is not an EventBridge event (JSON object with 'detail')")
        if expected is not None and self.detail_type != expected:
            raise PermanentError(f"detail-type: not the {expected} this queue takes")
        self.check_source()
        return parse_event(self.detail_type, self.envelope["detail"])

    def check_source(self) -> None:
        """Refuse (permanently) an event from anyone but the publisher this queue subscribes to: the bus rule
        matches the source too, this holds for what comes another way (a direct send, a replayed dead letter)."""
        from chalicelib import bootstrap

        if self.envelope is None or "detail" not in self.envelope:
            return  # not an event at all: event() says so
        accepted = accepted_sources(self.source_queue, self.core or bootstrap.settings(CoreSettings))
        if accepted and self.detail_type not in accepted:
            raise PermanentError(f"detail-type: not one this queue subscribes to ({', '.join(accepted)})")
        if accepted and self.source != accepted[self.detail_type]:
            raise UntrustedSource(f"source: not the publisher this queue trusts for {self.detail_type}")

    def event_time(self) -> dt.datetime | None:
        """When the fact happened, for the latency metric: occurredAt, endedAt, then the bus time."""
        for value in (self.detail.get("occurredAt"), self.detail.get("endedAt"), (self.envelope or {}).get("time")):
            parsed = parse_utc(value)
            if parsed is not None:
                return parsed
        return None


RecordHandler = Callable[[Delivery], Any]


def backoff_seconds(receive_count: int, base: int, cap: int) -> int:
    """Exponential back-off by receive count: base, 2*base, 4*base, ... capped."""
    exponent = max(0, receive_count - 1)
    return int(min(cap, base * (2 ** min(exponent, 30))))


def failure_reason(exc: BaseException) -> str:
    """A short, PII-free reason: the error's own message (ours never echo values), scrubbed and cut."""
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(scrub(text))[:MAX_REASON_CHARS]


@dataclass
class _Runner:
    handle_record: RecordHandler
    source_queue: str
    core: CoreSettings
    queue: QueueSettings
    sqs: Any
    clock: Callable[[], dt.datetime]
    parsed: Mapping[str, Delivery]  # by messageId: records the caller already read (billing's pass)
    queues: StageQueues = field(init=False)

    def __post_init__(self) -> None:
        self.queues = StageQueues(self.sqs, self.core.queue_name)

    def dlq_short(self) -> str | None:
        return next((spec.dlq for spec in QUEUES if spec.short == self.source_queue), None)

    def process(self, record: SQSRecord) -> None:
        known = self.parsed.get(str(record.raw_event.get("messageId") or ""))
        delivery = known or Delivery.from_record(record, self.source_queue, self.core)
        logger.thread_safe_append_keys(correlation_id=delivery.correlation_id, messageId=delivery.message_id,
                                       sourceQueue=self.source_queue, receiveCount=delivery.receive_count)
        try:
            self._latency(delivery)
            try:
                delivery.check_source()  # here too, so no handler can forget it
                self.handle_record(delivery)
            except Exception as exc:  # noqa: BLE001 - classified below, never swallowed silently
                self._failed(delivery, exc)
            else:
                metrics.add_metric(name="RecordsSucceeded", unit=MetricUnit.Count, value=1)
        finally:
            logger.thread_safe_clear_keys()

    def _latency(self, delivery: Delivery) -> None:
        happened = delivery.event_time()
        if happened is not None:
            delay_ms = max(0.0, (self.clock() - happened).total_seconds() * 1000)
            metrics.add_metric(name="EventLatencyMs", unit=MetricUnit.Milliseconds, value=delay_ms)

    def _failed(self, delivery: Delivery, exc: Exception) -> None:
        if isinstance(exc, PERMANENT_ERRORS):
            dlq = self.dlq_short()
            if dlq is not None:
                try:
                    self._dead_letter(delivery, dlq, exc)
                    return  # reported as success: it now lives in the DLQ, not the source queue
                except Exception as send_error:  # noqa: BLE001 - cannot park it: keep it and retry
                    logger.error("could not dead-letter a permanent failure; will retry",
                                 extra={"errorType": type(send_error).__name__})
        self._retry_later(delivery, exc)
        raise exc

    def _dead_letter(self, delivery: Delivery, dlq: str, exc: Exception) -> None:
        reason = failure_reason(exc)
        attributes = {
            "failureClass": {"DataType": "String", "StringValue": "permanent"},
            "failureReason": {"DataType": "String", "StringValue": reason},
            "sourceQueue": {"DataType": "String", "StringValue": self.source_queue},
            "errorType": {"DataType": "String", "StringValue": type(exc).__name__},
        }
        if delivery.message_id:
            attributes["originalMessageId"] = {"DataType": "String", "StringValue": delivery.message_id}
        redrive = _read(lambda: delivery.sqs.message_attributes[ATTR_REDRIVE_COUNT], None)
        if ATTR_REDRIVE_COUNT in delivery.message_attributes:
            attributes[ATTR_REDRIVE_COUNT] = {"DataType": _read(lambda: redrive.data_type, "Number"),
                                              "StringValue": delivery.message_attributes[ATTR_REDRIVE_COUNT]}
        self.queues.send(dlq, delivery.body or "{}", attributes)
        metrics.add_metric(name="RecordsDeadLettered", unit=MetricUnit.Count, value=1)
        logger.warning("permanent failure: sent to the dead-letter queue",
                       extra={"recordOutcome": "dead-lettered", "dlq": dlq, "errorType": type(exc).__name__,
                              "failureReason": reason,
                              "detailType": delivery.detail_type})

    def _retry_later(self, delivery: Delivery, exc: Exception) -> None:
        delay = backoff_seconds(delivery.receive_count, self.queue.sqs_backoff_base_seconds,
                                self.queue.sqs_backoff_cap_seconds)
        receipt = delivery.receipt_handle
        if receipt:
            try:
                self.queues.set_visibility(self.source_queue, receipt, delay)
            except Exception as visibility_error:  # noqa: BLE001 - the queue's own timeout still applies
                logger.warning("could not set the retry back-off", extra={"errorType": type(visibility_error).__name__})
        metrics.add_metric(name="RecordsRetried", unit=MetricUnit.Count, value=1)
        logger.warning("transient failure: will retry", extra={"recordOutcome": "retry",
                                                               "errorType": type(exc).__name__,
                                                               "failureReason": failure_reason(exc),
                                                               "retryInSeconds": delay,
                                                               "detailType": delivery.detail_type})


def run_batch(event_dict: Mapping[str, Any], context: Any, handle_record: RecordHandler, *, source_queue: str,
              core: CoreSettings | None = None, queue: QueueSettings | None = None, sqs: Any = None,
              clock: Callable[[], dt.datetime] | None = None, parsed: Mapping[str, Delivery] | None = None) -> dict:
    """Run ``handle_record`` on each SQS record; return Lambda's ``{"batchItemFailures": [...]}``.

    ``source_queue`` is the short name (``billing``, ``wallets``, ...), used to find the
    queue's DLQ in ``chalicelib/topology.py``. ``core`` (queue names, trusted sources), ``queue``
    (back-off), ``sqs`` and ``clock`` default to the composition root's; tests pass their own.
    The handler raises to fail a record (the module docstring says how its class decides retry or
    DLQ). ``parsed`` hands over deliveries the caller already built, so no record is read twice.
    """
    if core is None or queue is None or sqs is None or clock is None:
        from chalicelib import bootstrap

        core = core or bootstrap.settings(CoreSettings)
        queue = queue or bootstrap.settings(QueueSettings)
        sqs = sqs or bootstrap.aws_client("sqs")
        clock = clock or bootstrap.utc_now
    if not isinstance(event_dict.get("Records"), list) or not event_dict["Records"]:
        return {"batchItemFailures": []}
    runner = _Runner(handle_record, source_queue, core, queue, sqs, clock, dict(parsed or {}))
    # Not raising on an all-failed batch: each record's back-off was set above, and
    # reporting them as items keeps Lambda from retrying the whole batch at once.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    logger.thread_safe_clear_keys()
    metrics.add_dimension(name="queue", value=source_queue)
    try:
        return process_partial_response(event=dict(event_dict), record_handler=runner.process,
                                        processor=processor, context=context)
    finally:
        logger.thread_safe_clear_keys()
        metrics.flush_metrics()
