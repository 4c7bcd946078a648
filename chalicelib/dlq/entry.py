"""Lambda glue for the reconcilers (one per dead-letter queue) and the CLI's wiring.

The only module of the domain that touches ``bootstrap``. A record whose
handling raises (store or bus unreachable) is reported in
``batchItemFailures`` and comes back after the visibility timeout; DLQs have
no redrive of their own, so it stays until it is handled (the DLQ age alarm
watches exactly that).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib import bootstrap
from chalicelib.dlq.letters import DeadLetter
from chalicelib.dlq.queues import SqsQueues
from chalicelib.dlq.reconciler import ACTION_METRICS, Reconciler
from chalicelib.dlq.repository import DeadLetterRepository, MongoInvoiceLookup
from chalicelib.observability import logger, metrics
from chalicelib.observability.metrics import MetricUnit


def build_reconciler() -> Reconciler:
    settings = bootstrap.settings()
    return Reconciler(
        DeadLetterRepository(bootstrap.database()),
        SqsQueues(bootstrap.aws_client("sqs"), settings),
        bootstrap.publisher(),
        bootstrap.utc_now,
        redrive_limit=settings.redrive_limit,
        redrive_delay_seconds=settings.dlq_redrive_delay_seconds,
    )


def replay_ports() -> dict[str, Any]:
    """What the operator CLI needs, built from the same composition root as the Lambdas."""
    db = bootstrap.database()
    return {
        "settings": bootstrap.settings(),
        "dead_letters": DeadLetterRepository(db),
        "queues": SqsQueues(bootstrap.aws_client("sqs"), bootstrap.settings()),
        "invoices": MongoInvoiceLookup(db),
        "clock": bootstrap.utc_now,
    }


def reconcile(dlq_short_name: str, event_dict: dict[str, Any], context: Any) -> dict[str, Any]:
    """Handle a batch of dead letters from ``dlq_short_name``; partial batch response."""
    reconciler = build_reconciler()

    def handle(record: SQSRecord) -> None:
        letter = DeadLetter.from_lambda_record(record.raw_event)
        logger.append_keys(messageId=letter.message_id, queue=dlq_short_name)
        try:
            decision = reconciler.handle(dlq_short_name, letter)
        finally:
            logger.remove_keys(["messageId", "queue"])
        metrics.add_metric(name=ACTION_METRICS[decision.action], unit=MetricUnit.Count, value=1)
        logger.info("dead letter reconciled", extra={
            "queue": dlq_short_name, "messageId": letter.message_id, "action": decision.action,
            "failureClass": decision.failure_class, "eventType": decision.event_type,
            "businessKey": decision.business_key, "reason": decision.reason,
        })

    try:
        return process_partial_response(event=event_dict, record_handler=handle,
                                        processor=BatchProcessor(event_type=EventType.SQS), context=context)
    finally:
        metrics.flush_metrics()
