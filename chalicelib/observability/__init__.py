"""Structured JSON logs without PII, and CloudWatch EMF metrics (Powertools).

``handler.observed`` is the wrapper every ``app.py`` handler runs through: Lambda context on the
logs, metrics flushed per invocation.
"""

from chalicelib.observability.logs import PII_KEYS, logger, scrub
from chalicelib.observability.metrics import metrics

__all__ = ["PII_KEYS", "logger", "metrics", "scrub"]
