"""The one wrapper every Lambda entry in ``app.py`` runs through: context on the logs, metrics flushed.

``@observed`` goes under the Chalice decorator, so the local stack, which calls the functions
Chalice registered, runs it too. Chalice calls an ``@app.lambda_function`` handler with
``(event, context)`` and an ``on_sqs_message`` or ``schedule`` handler with one event object whose
``.context`` is the Lambda context; both reach Powertools' decorators as ``(event, context)``:

- ``logger.inject_lambda_context`` puts ``function_name``, ``function_request_id``,
  ``function_arn``, ``function_memory_size`` and ``cold_start`` on every log record of the
  invocation. ``clear_state``: keys a previous invocation appended do not carry over.
- ``metrics.log_metrics`` flushes what the invocation counted when it ends, raised or not, and
  publishes ``ColdStart`` (dimensions ``function_name``, ``service``) once per process.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from chalicelib.observability.logs import logger
from chalicelib.observability.metrics import metrics

Result = TypeVar("Result")


def observed(handler: Callable[..., Result]) -> Callable[..., Result]:
    """``handler`` with its invocation's Lambda context on the logs and its metrics flushed at the end."""

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics(capture_cold_start_metric=True)
    def run(event: Any, context: Any, call: tuple[Any, ...]) -> Result:
        return handler(*call)

    @functools.wraps(handler)  # keeps the name: Chalice builds the handler string "app.<name>" from it
    def entry(event: Any, *context: Any) -> Result:
        if context:  # @app.lambda_function: (event, context)
            return run(event, context[0], (event, *context))
        return run(event.to_dict(), event.context, (event,))  # a Chalice event object

    return entry
