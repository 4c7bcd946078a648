"""EventBridge -> AppSync targets, locally: the deploy step's rules, run against moto.

moto keeps rules and SQS targets but does not call AppSync targets (it refuses
to deliver to them), so the local stack puts the deploy step's bus -> AppSync
rules into moto with the same names and patterns and one local tap queue as
their target. The event pump hands the tapped events to ``AppSyncDelivery``,
which does what EventBridge's AppSync target does with the very same target
definition: match the rule's pattern, render its input transformer (moto's own
renderer) and run its publish mutation with IAM auth through the gateway.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from moto.events.models import EventPattern
from moto.events.utils import EventTemplateParser

from appsync.infra import Changes
from appsync.subscriptions import BusTarget, bus_rule_name, bus_targets
from chalicelib.config import CoreSettings
from chalicelib.observability.logs import logger
from devstack.gateway import Gateway
from devstack.pump import queue_behind_rules

TAP_TARGET_ID = "local-appsync-tap"
# What the deploy step would address: the local API has no endpoint id or events role of its own.
LOCAL_ENDPOINT_ARN = "arn:aws:appsync:local:123456789012:endpoints/graphql-api/local"
LOCAL_ROLE_ARN = "arn:aws:iam::123456789012:role/local-events-to-appsync"

Publish = Callable[[str, dict[str, Any]], None]


def tap_queue_name(settings: CoreSettings) -> str:
    return settings.resource_name("appsync-tap")


def provision(clients: Callable[[str], Any], settings: CoreSettings, schema: Any,
              changes: Changes | None = None) -> tuple[str, str]:
    """Put the bus -> AppSync rules into moto, targeting the tap queue; returns its URL and ARN."""
    changes = changes or Changes()
    prefix = settings.prefix
    specs = {bus_rule_name(prefix, spec.detail_type): spec for spec in bus_targets(schema)}
    tapped = queue_behind_rules(clients, settings.event_bus_name, tap_queue_name(settings),
                                {name: spec.pattern for name, spec in specs.items()}, TAP_TARGET_ID)
    for name, spec in specs.items():
        changes.record("ensured", "rule (local tap)", f"{name} -> {spec.mutation}")
    return tapped


class AppSyncDelivery:
    """An SQS-batch handler (for ``QueuePump``) doing what EventBridge's AppSync target does."""

    def __init__(self, gateway: Gateway, publish: Publish) -> None:
        self.gateway = gateway
        self.publish = publish
        self.rules: list[tuple[EventPattern, BusTarget, dict[str, Any]]] = [
            (EventPattern.load(json.dumps(spec.pattern)), spec, spec.target(LOCAL_ENDPOINT_ARN, LOCAL_ROLE_ARN))
            for spec in bus_targets(gateway.schema)
        ]

    def __call__(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        failures = []
        for record in event.get("Records", []):
            try:
                self.deliver(json.loads(record["body"]))
            except Exception as exc:  # retried by the pump, like a target's retry policy
                logger.warning("appsync target failed", extra={"errorClass": type(exc).__name__,
                                                               "error": str(exc)[:200]})
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    def deliver(self, bus_event: dict[str, Any]) -> int:
        """Run the publish mutation of every rule ``bus_event`` matches; returns how many ran."""
        bus_event.setdefault("ingestion-time", time.time())  # the renderer offers it to templates
        ran = 0
        for pattern, spec, target in self.rules:
            if not pattern.matches_event(bus_event):
                continue
            transformer = target["InputTransformer"]
            variables = EventTemplateParser.parse(input_template=transformer["InputTemplate"],
                                                  input_paths_map=transformer["InputPathsMap"], event=bus_event)
            body = {"query": target["AppSyncParameters"]["GraphQLOperation"], "variables": variables}
            status, result = self.gateway.handle(body, None, iam=True)
            if status != 200 or result.get("errors"):
                raise RuntimeError(f"{spec.mutation}: {status} {result.get('errors')}")
            self.publish(spec.mutation, result["data"][spec.mutation])
            ran += 1
        return ran
