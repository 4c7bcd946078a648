"""Lambda glue for billing: the two queue consumers and the ``wallet``/``invoices``/``invoice`` resolver.

The only billing module that touches ``bootstrap``: it builds the dependencies
once per process (indexes ensured once, since the unique ``sessionId`` index is
part of what makes billing exactly-once) and hands them to ``service``.
"""

from __future__ import annotations

from typing import Any

from chalicelib import bootstrap
from chalicelib.contracts.events import SESSION_ENDED, USER_REGISTERED


def _deps():
    from chalicelib.billing.repository import INDEXES, BillingRepository
    from chalicelib.billing.service import BillingDeps, BillingPolicy

    settings = bootstrap.settings()
    db = bootstrap.indexed_database(INDEXES, "billing")
    deps = BillingDeps(repo=BillingRepository(db), publisher=bootstrap.publisher(), clock=bootstrap.utc_now,
                       policy=BillingPolicy.from_settings(settings))
    if settings.stage == "local" and settings.billing_chaos_crash_rate > 0:
        deps.checkpoint = _chaos_checkpoint(float(settings.billing_chaos_crash_rate))
    return deps


class ChaosCrash(RuntimeError):
    """Injected by the chaos run (local stage only): the handler dies between two billing steps."""


def _chaos_checkpoint(rate: float):
    """Crash after a billing step with probability ``rate`` (BILLING_CHAOS_CRASH_RATE, local stage only)."""
    import random

    def checkpoint(step: str) -> None:
        if random.random() < rate:  # noqa: S311 - fault injection, not cryptography
            raise ChaosCrash(f"chaos: crashed after {step}")

    return checkpoint


def handle_sessions(event_dict: dict[str, Any], context: Any) -> dict[str, Any]:
    """Billing queue: each SESSION_ENDED record is billed; returns ``{"batchItemFailures": [...]}``."""
    from chalicelib.billing import service
    from chalicelib.events.consumer import Delivery, run_batch
    from chalicelib.observability.logs import logger

    deps = _deps()
    max_receives = bootstrap.settings().max_receive_count

    def bill(delivery: Delivery) -> None:
        event = delivery.event(expected=SESSION_ENDED)
        outcome = service.bill_session(deps, event, final_attempt=delivery.receive_count >= max_receives,
                                       correlation_id=delivery.correlation_id)
        logger.info("session billed", extra={"sessionId": event.payload["sessionId"], **outcome})

    return run_batch(event_dict, context, bill, source_queue="billing")


def handle_registrations(event_dict: dict[str, Any], context: Any) -> dict[str, Any]:
    """Wallets queue: each USER_REGISTERED opens the user's wallet (idempotent)."""
    from chalicelib.billing import service
    from chalicelib.events.consumer import Delivery, run_batch
    from chalicelib.observability.logs import logger

    deps = _deps()

    def open_wallet(delivery: Delivery) -> None:
        event = delivery.event(expected=USER_REGISTERED)
        opened = service.open_wallet(deps, event)
        logger.info("wallet opened" if opened else "wallet already open", extra={"userId": event.payload["userId"]})

    return run_batch(event_dict, context, open_wallet, source_queue="wallets")


def resolve(event: dict[str, Any], context: Any) -> Any:
    """Dispatch ``wallet``, ``invoices(first, after)`` and ``invoice(id)`` for the signed-in caller."""
    from chalicelib.billing import service
    from chalicelib.billing.repository import BillingRepository
    from chalicelib.contracts.errors import Unauthorized, ValidationError

    field = ((event or {}).get("info") or {}).get("fieldName")
    args = (event or {}).get("arguments") or {}
    if field not in {"wallet", "invoices", "invoice"}:
        raise ValidationError(f"The billing resolver does not serve field {field!r}.",
                              details={"fieldName": "unknown"})
    user_id = (((event or {}).get("identity") or {}).get("resolverContext") or {}).get("userId")
    if not user_id:
        raise Unauthorized("Sign in to see your wallet and invoices.")
    repo = BillingRepository(bootstrap.database())
    if field == "wallet":
        return service.wallet_view(repo, user_id)
    if field == "invoices":
        return service.list_invoices(repo, user_id, args.get("first"), args.get("after"))
    return service.get_invoice(repo, user_id, args.get("id"))
