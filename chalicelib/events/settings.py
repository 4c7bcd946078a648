"""The queue consumers' settings: how often SQS hands a record over, how long a retry waits, how often
a dead letter comes back.

``DLQ_REDRIVE_LIMIT`` is here, not in the reconcilers' ``dlq`` section, because it describes
delivery as much as the receive count does: a transient record gets ``SQS_MAX_RECEIVE_COUNT``
receives per life and ``DLQ_REDRIVE_LIMIT`` re-driven lives. The reconciler re-drives by it and
billing knows its last chance by it (the last receive of the last re-drive); both load this
section, and neither imports the other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from chalicelib.config import Section, integer, setting


@dataclass(frozen=True)
class QueueSettings(Section):
    """Read by the shared batch runner (``events/consumer.py``), billing, the reconcilers and the deploy step."""

    name: ClassVar[str] = "queue"

    # Receives before SQS moves a message to its DLQ (per life: a re-drive is a new message).
    max_receive_count: int = setting("SQS_MAX_RECEIVE_COUNT", "5", integer(1, 20))
    # A transiently failed record becomes visible again after min(cap, base * 2**(receiveCount-1)) seconds.
    sqs_backoff_base_seconds: int = setting("SQS_BACKOFF_BASE_SECONDS", "2", integer(0, 900))
    sqs_backoff_cap_seconds: int = setting("SQS_BACKOFF_CAP_SECONDS", "300", integer(0, 43200))
    # Extra re-drives (new lives) the reconciler gives a transient dead letter before it is given up;
    # billing refuses a session for good only on the last receive of the last one.
    redrive_limit: int = setting("DLQ_REDRIVE_LIMIT", "3", integer(0, 10))
