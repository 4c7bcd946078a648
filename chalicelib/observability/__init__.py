"""Structured JSON logs without PII, and CloudWatch EMF metrics (Powertools)."""

from chalicelib.observability.logs import PII_KEYS, logger, scrub
from chalicelib.observability.metrics import metrics

__all__ = ["PII_KEYS", "logger", "metrics", "scrub"]
