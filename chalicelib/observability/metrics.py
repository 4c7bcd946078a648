"""CloudWatch metrics in EMF: namespace ``JUCR``, every metric with the dimension ``service=jucr``.

Flushed at the end of each Lambda invocation by ``observed`` (``observability/handler.py``),
which every handler in ``app.py`` runs through. The shared SQS runner
(``events/consumer.py``) also flushes at the end of each batch, while its ``queue`` dimension
is set, so a consumer's metrics go out once, with that dimension; the invocation's own flush
then finds nothing left. Code run outside those handlers (the operator CLI) publishes no metrics,
except through that runner.
"""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = "JUCR"

metrics = Metrics(namespace=NAMESPACE, service="jucr")

# An invocation that counted nothing (a warm resolver call; a batch the runner already flushed) has
# nothing to publish, and Powertools warns about that once per process on stderr: a plain-text line
# among the JSON log records that says nothing an operator could act on.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

__all__ = ["MetricUnit", "NAMESPACE", "metrics"]
