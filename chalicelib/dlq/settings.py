"""The reconcilers' settings: how often and how late a transient dead letter is re-driven."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from chalicelib.config import Section, integer, setting


@dataclass(frozen=True)
class DlqSettings(Section):
    """Read by the reconciler Lambdas (the operator's replay tool re-drives by hand and needs none)."""

    name: ClassVar[str] = "dlq"

    # Extra re-drives a transient failure gets before it is given up.
    redrive_limit: int = setting("DLQ_REDRIVE_LIMIT", "3", integer(0, 10))
    # First re-drive waits this long (SQS DelaySeconds), doubling per re-drive, capped at 900 s by SQS.
    dlq_redrive_delay_seconds: int = setting("DLQ_REDRIVE_DELAY_SECONDS", "30", integer(0, 900))
