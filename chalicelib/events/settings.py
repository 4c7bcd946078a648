"""The queue consumers' settings: how often SQS hands a record over and how long a retry waits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from chalicelib.config import Section, integer, setting


@dataclass(frozen=True)
class QueueSettings(Section):
    """Read by the shared batch runner (``events/consumer.py``), billing and the deploy step's redrive policy."""

    name: ClassVar[str] = "queue"

    # Receives before SQS moves a message to its DLQ; billing treats the last one as final.
    max_receive_count: int = setting("SQS_MAX_RECEIVE_COUNT", "5", integer(1, 20))
    # A transiently failed record becomes visible again after min(cap, base * 2**(receiveCount-1)) seconds.
    sqs_backoff_base_seconds: int = setting("SQS_BACKOFF_BASE_SECONDS", "2", integer(0, 900))
    sqs_backoff_cap_seconds: int = setting("SQS_BACKOFF_CAP_SECONDS", "300", integer(0, 43200))
