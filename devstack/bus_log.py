"""One log line per event put on the local bus, whoever put it: the bus door or a function.

A catch-all rule on the local bus sends a copy of every event to a queue of its own,
and a quiet pump turns each into a line with its detail-type, source and ids. A rule
rather than a hook in the door or the publisher: it sees exactly what the bus saw,
once, including events the functions publish, and nothing in ``chalicelib`` changes.
Only ids are copied from the detail (keys ending in ``Id``), never the payload, so an
email or a name put on the bus by mistake does not reach the log.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalicelib.config import CoreSettings
from chalicelib.observability.logs import scrub
from chalicelib.topology import QueueSpec
from devstack.pump import QueuePump, queue_behind_rules

Emit = Callable[[dict[str, Any]], None]
SPEC = QueueSpec(short="bus-log", consumer=None, batch_size=10)
# Every event has a source, so this matches them all (the same pattern works on EventBridge).
CATCH_ALL = {"source": [{"exists": True}]}


def name(settings: CoreSettings) -> str:
    """The rule's name, also its queue's, beside the stage's other resources."""
    return settings.resource_name("local-bus-log")


def provision(clients: Callable[[str], Any], settings: CoreSettings) -> tuple[str, str]:
    """The catch-all rule and its queue in moto (idempotent); returns the queue's URL and ARN."""
    return queue_behind_rules(clients, settings.event_bus_name, name(settings), {name(settings): CATCH_ALL},
                              "local-bus-log")


def bus_line(bus_event: dict[str, Any]) -> dict[str, Any]:
    """What the log shows of one bus event: its type, source, bus id and the detail's ids."""
    detail = bus_event.get("detail") if isinstance(bus_event.get("detail"), dict) else {}
    ids = {key: value for key, value in detail.items()
           if key.endswith("Id") and isinstance(value, str | int) and not isinstance(value, bool)}
    return scrub({"bus": bus_event.get("detail-type"), "source": bus_event.get("source"),
                  "busEventId": bus_event.get("id"), **ids})


class BusLog:
    """An SQS-batch handler (for ``QueuePump``) writing one line per bus event."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit

    def __call__(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        for record in event.get("Records", []):
            try:
                bus_event = json.loads(record["body"])
            except ValueError:
                bus_event = {}
            # A body that is not an event is still worth a line: it was on the bus.
            self.emit(bus_line(bus_event if isinstance(bus_event, dict) else {}))
        return {"batchItemFailures": []}


def start(clients: Callable[[str], Any], settings: CoreSettings, emit: Emit) -> QueuePump:
    """Provision the rule and start its pump; the pump's own per-message lines are off (one line per event)."""
    url, arn = provision(clients, settings)
    pump = QueuePump(clients("sqs"), SPEC, url, arn, BusLog(emit), emit, settings.aws_region, report=False)
    pump.start()
    return pump
