"""CloudWatch metrics in EMF, flushed by the handler decorators in ``app.py``."""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = "JUCR"

metrics = Metrics(namespace=NAMESPACE, service="jucr")

__all__ = ["MetricUnit", "NAMESPACE", "metrics"]
