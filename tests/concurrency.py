"""Start calls together in threads, for the race tests (unique-insert claims, locks, lockout)."""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_concurrently(*calls: Callable[[], object]) -> None:
    """Run every call in its own thread, all started before any is joined; return when all are done."""
    threads = [threading.Thread(target=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
