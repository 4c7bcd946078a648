"""What the chaos run measures: latency from put to payment, and the faults the stack's own logs report.

The stack logs one JSON object per line (``--log-format json``, which the stack helper
always passes), so the evidence that faults really happened is read from what the
consumer and reconciler wrote, not inferred from the run's own intentions.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile: a value that was really observed, never an interpolation."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def latencies(records: list[dict[str, Any]], first_put: dict[str, float]) -> list[float]:
    """Seconds from the session's first PutEvents to its PAYMENT_COMPLETED ``occurredAt`` (same host clock)."""
    seen: dict[str, float] = {}
    for record in records:
        if record["type"] != "PAYMENT_COMPLETED":
            continue
        session = record["detail"].get("sessionId")
        at = dt.datetime.fromisoformat(record["detail"]["occurredAt"].replace("Z", "+00:00")).timestamp()
        if session in first_put:
            seen.setdefault(session, at - first_put[session])
    return list(seen.values())


def _json_lines(logs: str) -> Iterator[dict[str, Any]]:
    for line in logs.splitlines():
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                continue


def fault_evidence(logs: str) -> dict[str, int]:
    """What the stack's own JSON logs say happened: injected crashes, store failures, retries, dead letters."""
    found = Counter()
    for doc in _json_lines(logs):
        reason = str(doc.get("failureReason") or "")
        message = doc.get("message")
        if message == "transient failure: will retry":
            found["retriedRecords"] += 1
            found["chaosCrashes"] += reason.startswith("chaos: crashed after")
            found["storeUnavailable"] += "store unavailable" in reason
        elif message == "permanent failure: sent to the dead-letter queue":
            found["deadLettered"] += 1
        elif message == "dead letter reconciled":
            found[f"reconciler:{doc.get('action')}"] += 1
    return dict(found)


def slo_metric_samples(logs: str) -> list[float]:
    """``EventLatencyMs`` values of the billing queue from the EMF lines the consumer runner flushed."""
    values: list[float] = []
    for doc in _json_lines(logs):
        if "EventLatencyMs" not in doc or doc.get("queue") != "billing":
            continue
        value = doc.get("EventLatencyMs")
        values.extend(value if isinstance(value, list) else [value])
    return [float(v) for v in values if isinstance(v, int | float)]

