"""The local stand-in for EventBridge Scheduler: the OCM sync, now and every ``LOCAL_OCM_SYNC_INTERVAL`` seconds.

A thread calling the function directly, with the event shape a schedule rule sends:
the local bus has no scheduler, and one timer is all the local stage needs.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any

from devstack.lambda_context import LocalLambdaContext

Emit = Callable[[dict[str, Any]], None]


def scheduled_event() -> dict[str, Any]:
    return {"version": "0", "id": "local", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "000000000000", "time": dt.datetime.now(dt.timezone.utc).isoformat(), "region": "local",
            "resources": [], "detail": {}}


def loop(handler: Callable, seconds: float, stop: threading.Event, emit: Emit) -> None:
    """Run the sync until ``stop`` is set; one line per run (its result, or the error's class)."""
    while not stop.is_set():
        started = time.monotonic()
        try:
            result = handler(scheduled_event(), LocalLambdaContext(function_name="ocm_sync", timeout_seconds=300))
            emit({"schedule": "ocm_sync", "outcome": "ok", "result": result,
                  "seconds": round(time.monotonic() - started, 2)})
        except Exception as exc:  # the next run may succeed; the line says this one did not
            emit({"schedule": "ocm_sync", "outcome": "error", "error": type(exc).__name__})
        stop.wait(seconds)


def start(handler: Callable | None, interval: str, stop: threading.Event, emit: Emit,
          say: Callable[[str], None]) -> None:
    if interval == "off" or handler is None:
        say("schedule: OCM sync off")
        return
    seconds = float(interval)
    threading.Thread(target=loop, args=(handler, seconds, stop, emit), name="schedule", daemon=True).start()
    say(f"schedule: OCM sync now and every {seconds:g}s (LOCAL_OCM_SYNC_INTERVAL)")
