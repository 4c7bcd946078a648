"""Lambda glue for the reconcilers (one per dead-letter queue) and the CLI's wiring.

The only module of the domain that touches ``bootstrap``. Records run through
the shared batch runner (``chalicelib.events.consumer.run_batch``): a record
whose handling raises (store or bus unreachable) is reported in
``batchItemFailures`` with a back-off on its visibility; DLQs have no DLQ of
their own, so it stays until it is handled (the DLQ age alarm watches exactly
that). Metrics therefore carry the dimension ``queue=<dlq>`` as well as
``service=jucr``; ``appsync/alarms.py`` selects both.
"""

from __future__ import annotations

from typing import Any

from chalicelib import bootstrap
from chalicelib.config import CoreSettings
from chalicelib.dlq.letters import DeadLetter
from chalicelib.dlq.queues import SqsQueues
from chalicelib.dlq.reconciler import ACTION_METRICS, BILLING_FAILED_ACTION, Reconciler
from chalicelib.dlq.repository import INDEXES, BillingInvoiceLookup, DeadLetterRepository
from chalicelib.dlq.settings import DlqSettings
from chalicelib.events.consumer import Delivery, run_batch
from chalicelib.events.settings import QueueSettings
from chalicelib.observability import logger, metrics
from chalicelib.observability.metrics import MetricUnit


def build_reconciler() -> Reconciler:
    settings = bootstrap.settings(DlqSettings)
    queue = bootstrap.settings(QueueSettings)  # the re-drive limit billing also reads
    db = bootstrap.indexed_database(INDEXES, "dlq")
    return Reconciler(
        DeadLetterRepository(db),
        SqsQueues(bootstrap.aws_client("sqs"), bootstrap.settings(CoreSettings)),
        bootstrap.publisher(),
        bootstrap.utc_now,
        invoice_states=BillingInvoiceLookup(db),
        redrive_limit=queue.redrive_limit,
        redrive_delay_seconds=settings.dlq_redrive_delay_seconds,
        # Compensate only SESSION_ENDED from the source the bus rule and the batch runner trust.
        session_source=bootstrap.settings(CoreSettings).session_event_source,
    )


def replay_ports() -> dict[str, Any]:
    """What the operator CLI needs, built from the same composition root as the Lambdas."""
    db = bootstrap.database()
    return {
        "dead_letters": DeadLetterRepository(db),
        "queues": SqsQueues(bootstrap.aws_client("sqs"), bootstrap.settings(CoreSettings)),
        "invoice_states": BillingInvoiceLookup(db),
        "clock": bootstrap.utc_now,
    }


def record_outcome(action: str) -> str:
    """``compensated`` when BILLING_FAILED was published (the saga's compensation), else the action itself."""
    return "compensated" if action == BILLING_FAILED_ACTION else action


def reconcile(dlq_short_name: str, event_dict: dict[str, Any], context: Any) -> dict[str, Any]:
    """Handle a batch of dead letters from ``dlq_short_name``; partial batch response."""
    reconciler = build_reconciler()

    def handle(delivery: Delivery) -> None:
        letter = DeadLetter.from_lambda_record(delivery.record)
        decision = reconciler.handle(dlq_short_name, letter)
        metrics.add_metric(name=ACTION_METRICS[decision.action], unit=MetricUnit.Count, value=1)
        logger.info("dead letter reconciled", extra={
            "recordOutcome": record_outcome(decision.action), "queue": dlq_short_name, "action": decision.action,
            "failureClass": decision.failure_class, "errorType": decision.error_type,
            "eventType": decision.event_type, "businessKey": decision.business_key, "reason": decision.reason,
        })

    return run_batch(event_dict, context, handle, source_queue=dlq_short_name)
