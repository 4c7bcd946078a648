"""One SQS adapter: this stage's queues by the topology's short names, each URL looked up once.

The batch runner (dead-lettering, retry back-off), the reconciler and the replay tool,
the local stack and its checks all reach queues by short name (``billing``,
``billing-dlq``). A queue's URL is one ``GetQueueUrl`` away and never changes while the
queue exists, so it is kept after the first lookup: a warm Lambda pays no extra call per
record, and no caller keeps a cache of its own.

Names follow ``chalicelib.config.resource_name``, the rule the deploy step creates them by.
boto3 is not imported: callers hand in a client (a moto one in tests, the composition
root's in Lambda).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.config import resource_name

# The message attribute counting re-drives: the reconciler sets it on what it sends back, the
# batch runner copies it onto a dead letter, billing reads it to know a session's last chance.
ATTR_REDRIVE_COUNT = "redriveCount"
# SQS refuses a DelaySeconds above 15 minutes; a longer back-off is capped, not an error.
SQS_MAX_DELAY_SECONDS = 900
DEPTH_ATTRIBUTES = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed")

QueueNamer = Callable[[str], str]


def message_attributes(values: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """SQS message attributes from plain values.

    An ``int`` becomes a Number, a mapping is taken as SQS's own shape (to pass a received
    attribute on with its type), anything else a String: what the consumers read back is
    always text, so the type only matters to SQS filters and to what an operator sees.
    """
    shaped: dict[str, dict[str, str]] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            shaped[key] = {"DataType": str(value.get("DataType") or "String"), "StringValue": str(value["StringValue"])}
        elif isinstance(value, int) and not isinstance(value, bool):
            shaped[key] = {"DataType": "Number", "StringValue": str(value)}
        else:
            shaped[key] = {"DataType": "String", "StringValue": str(value)}
    return shaped


class StageQueues:
    """A boto3 SQS client bound to one stage's queue names; URLs cached per short name.

    ``namer`` maps a short name to the full one (``CoreSettings.queue_name`` in the runtime;
    a checker may pass its own for queues outside the topology, such as a capture queue).
    """

    def __init__(self, sqs: Any, namer: QueueNamer) -> None:
        self.sqs = sqs
        self.namer = namer
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()  # the local stack's pumps share one adapter across threads

    @classmethod
    def for_stage(cls, sqs: Any, app_name: str, stage: str) -> StageQueues:
        return cls(sqs, lambda short: resource_name(app_name, stage, short))

    def url(self, short: str) -> str:
        cached = self._urls.get(short)
        if cached is None:
            cached = self.sqs.get_queue_url(QueueName=self.namer(short))["QueueUrl"]
            with self._lock:
                self._urls[short] = cached
        return cached

    def arn(self, short: str) -> str:
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.url(short), AttributeNames=["QueueArn"])
        return attrs["Attributes"]["QueueArn"]

    def send(self, short: str, body: str, attributes: Mapping[str, Any] | None = None,
             delay_seconds: int = 0) -> str:
        """Send one message; returns its id. ``delay_seconds`` is clamped to what SQS accepts."""
        response = self.sqs.send_message(
            QueueUrl=self.url(short), MessageBody=body,
            DelaySeconds=max(0, min(SQS_MAX_DELAY_SECONDS, int(delay_seconds))),
            MessageAttributes=message_attributes(attributes or {}),
        )
        return response["MessageId"]

    def set_visibility(self, short: str, receipt_handle: str, seconds: int) -> None:
        """Hide a received message for ``seconds`` (0: visible again at once)."""
        self.sqs.change_message_visibility(QueueUrl=self.url(short), ReceiptHandle=receipt_handle,
                                           VisibilityTimeout=int(seconds))

    def delete(self, short: str, receipt_handle: str) -> None:
        self.sqs.delete_message(QueueUrl=self.url(short), ReceiptHandle=receipt_handle)

    def depth(self, short: str) -> dict[str, int]:
        """Visible, in-flight and delayed messages, as SQS approximates them."""
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.url(short), AttributeNames=list(DEPTH_ATTRIBUTES))
        return {key: int(value) for key, value in attrs["Attributes"].items()}
