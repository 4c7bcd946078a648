"""Lambda glue for billing: the two queue consumers and the ``wallet``/``invoices``/``invoice`` resolver.

The only billing module that touches ``bootstrap``: it builds the dependencies
(indexes ensured once per process, since the unique ``sessionId`` index is part of
what makes billing exactly-once) and hands them to ``service``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from chalicelib import bootstrap
from chalicelib.contracts.events import SESSION_ENDED, USER_REGISTERED
from chalicelib.events.queues import ATTR_REDRIVE_COUNT

if TYPE_CHECKING:
    from chalicelib.billing.policy import BillingDeps
    from chalicelib.events.consumer import Delivery


def billing_deps() -> BillingDeps:
    from chalicelib.billing.policy import BillingDeps, BillingPolicy
    from chalicelib.billing.repository import INDEXES, BillingRepository
    from chalicelib.billing.settings import BillingSettings

    policy = BillingPolicy.from_settings(bootstrap.settings(BillingSettings))  # first: a bad tariff stops here
    db = bootstrap.indexed_database(INDEXES, "billing")
    deps = BillingDeps(repo=BillingRepository(db), publisher=bootstrap.publisher(), clock=bootstrap.utc_now,
                       policy=policy)
    if step_hook is not None:
        deps.checkpoint = step_hook
    return deps


# Called after each billing step when set: nothing sets it in Lambda. The local stack's chaos
# run (devstack/chaos_hook.py) sets it to crash between steps, as the tests do through
# BillingDeps.checkpoint.
step_hook: Callable[[str], None] | None = None


def handle_sessions(event_dict: dict[str, Any], context: Any) -> dict[str, Any]:
    """Billing queue: the batch's SESSION_ENDED records are billed; returns ``{"batchItemFailures": [...]}``."""
    from chalicelib.events.settings import QueueSettings

    deps = billing_deps()
    queue = bootstrap.settings(QueueSettings)
    return bill_records(event_dict, context, deps, max_receives=queue.max_receive_count,
                        redrive_limit=queue.redrive_limit)


def last_chance(delivery: Delivery, max_receives: int, redrive_limit: int) -> bool:
    """Whether no delivery of this session will follow: the last receive of the reconciler's last re-drive.

    A missing wallet is refused for good only then. On an earlier last receive SQS moves the record to
    billing-dlq and the reconciler re-drives it (``redriveCount`` + 1, a growing delay), so a wallet
    that opens late still gets its session billed.
    """
    try:
        redrives = int(delivery.message_attributes.get(ATTR_REDRIVE_COUNT) or 0)
    except ValueError:
        redrives = 0  # unreadable: the reconciler reads it as 0 too (chalicelib.dlq.letters)
    return delivery.receive_count >= max_receives and redrives >= redrive_limit


def bill_records(event_dict: Mapping[str, Any], context: Any, deps: BillingDeps, *, max_receives: int,
                 redrive_limit: int, **runner: Any) -> dict[str, Any]:
    """Bill all the batch's sessions in one pass (each billing step one store call for all), then let
    ``run_batch`` report each record the usual way: success, retry with back-off, or dead letter.

    ``runner`` goes to ``run_batch`` (``core``, ``queue``, ``sqs``, ``clock``: tests and the bench). The
    pass reads the records with the same ``core`` as ``run_batch``, so both trust the same sources.
    """
    from chalicelib.billing import service
    from chalicelib.billing.session_state import COMPLETED
    from chalicelib.config import CoreSettings
    from chalicelib.events.consumer import Delivery, TransientError, run_batch
    from chalicelib.observability.logs import logger

    runner["core"] = runner.get("core") or bootstrap.settings(CoreSettings)
    records = event_dict.get("Records") if isinstance(event_dict, Mapping) else None
    deliveries = [Delivery.from_record(r, "billing", runner["core"]) for r in records or []
                  if isinstance(r, Mapping)]
    outcomes: dict[str, Any] = {}
    requests, asked = [], []
    for delivery in deliveries:
        try:
            event = delivery.event(expected=SESSION_ENDED)
        except Exception as exc:  # noqa: BLE001 - reported for this record by run_batch below
            outcomes[delivery.message_id] = exc
            continue
        requests.append(service.SessionRequest(event, last_chance(delivery, max_receives, redrive_limit),
                                                delivery.correlation_id))
        asked.append(delivery)
    for delivery, outcome in zip(asked, service.bill_sessions(deps, requests), strict=True):
        outcomes[delivery.message_id] = outcome

    def report(delivery: Delivery) -> None:
        outcome = outcomes.get(delivery.message_id, TransientError("record not billed in this pass; retrying"))
        if isinstance(outcome, Exception):
            raise outcome
        # The payment's result decides the outcome: an unpaid invoice is billed but not settled.
        record_outcome = "billed" if outcome.get("payment") == COMPLETED else "payment-failed"
        logger.info("session billed", extra={"recordOutcome": record_outcome,
                                             "sessionId": delivery.detail.get("sessionId"), **outcome})

    return run_batch(event_dict, context, report, source_queue="billing",
                     parsed={d.message_id: d for d in deliveries if d.message_id}, **runner)


def handle_registrations(event_dict: dict[str, Any], context: Any) -> dict[str, Any]:
    """Wallets queue: each USER_REGISTERED opens the user's wallet (idempotent)."""
    from chalicelib.billing import service
    from chalicelib.events.consumer import run_batch
    from chalicelib.observability.logs import logger

    deps = billing_deps()

    def open_wallet(delivery: Delivery) -> None:
        event = delivery.event(expected=USER_REGISTERED)
        opened = service.open_wallet(deps, event)
        logger.info("wallet opened" if opened else "wallet already open",
                    extra={"recordOutcome": "wallet-opened" if opened else "wallet-already-open",
                           "userId": event.payload["userId"]})

    return run_batch(event_dict, context, open_wallet, source_queue="wallets")


def resolve(event: dict[str, Any], context: Any) -> Any:
    """``wallet``, ``invoices(first, after)`` and ``invoice(id)`` of the signed-in caller (``billing/graphql.py``).

    Reads only, so no indexes are ensured on this path.
    """
    from chalicelib.billing.graphql import router
    from chalicelib.billing.repository import BillingRepository
    from chalicelib.resolvers import serve

    return serve(router, event, context, lambda: BillingRepository(bootstrap.database()))
