"""The reconcilers' settings: how late a transient dead letter is re-driven.

How often (``DLQ_REDRIVE_LIMIT``) is in the ``queue`` section (``chalicelib/events/settings.py``):
billing reads it too, to know a session's last chance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from chalicelib.config import Section, integer, setting


@dataclass(frozen=True)
class DlqSettings(Section):
    """Read by the reconciler Lambdas (the operator's replay tool re-drives by hand and needs none)."""

    name: ClassVar[str] = "dlq"

    # First re-drive waits this long (SQS DelaySeconds), doubling per re-drive, capped at 900 s by SQS.
    dlq_redrive_delay_seconds: int = setting("DLQ_REDRIVE_DELAY_SECONDS", "30", integer(0, 900))
