"""Put a raw event on the local bus, as the Session Service would."""

from __future__ import annotations

import json
from typing import Any

from chalicelib import bootstrap
from chalicelib.config import CoreSettings
from chalicelib.contracts.events import trusted_sources


def put_raw_event(body: Any) -> tuple[int, dict[str, Any]]:
    """Accept the seed form ``{"eventType": ..., ...}`` or an entry ``{"detail-type", "detail", "source"}``."""
    if not isinstance(body, dict):
        return 400, {"error": "an event must be a JSON object"}
    settings = bootstrap.settings(CoreSettings)
    sources = trusted_sources(settings.session_event_source)  # a seed goes out as its trusted producer would
    if "detail-type" in body or "detail" in body:
        detail_type, detail = body.get("detail-type"), body.get("detail")
        source = body.get("source") or sources.get(detail_type, "jucr.local")
    else:
        detail_type, detail = body.get("eventType"), body
        source = sources.get(detail_type, "jucr.local")
    if not isinstance(detail_type, str) or not detail_type.strip():
        return 400, {"error": "an event needs a type: 'eventType' (or 'detail-type' with 'detail')"}
    if not isinstance(detail, dict):
        return 400, {"error": "'detail' must be a JSON object"}
    response = bootstrap.aws_client("events").put_events(
        Entries=[{"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail),
                  "EventBusName": settings.event_bus_name}]
    )
    entry = response["Entries"][0]
    if entry.get("ErrorCode"):
        return 502, {"error": f"bus refused the event: {entry['ErrorCode']}"}
    # No log line here: the stack's bus log (devstack/bus_log.py) writes one for every event on the bus.
    return 202, {"accepted": True, "eventId": entry.get("EventId"), "detailType": detail_type}
