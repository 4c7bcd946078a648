"""SQS access for the reconciler and the replay tool, by the topology's short names.

Peeking is honest about SQS: there is no read-without-receive. ``peek``
receives with a short visibility timeout (the messages are invisible to the
reconciler for that long), never deletes, and hands every message back at once
(visibility 0) when it is done.
"""

from __future__ import annotations

from typing import Any, Protocol

from chalicelib.config import CoreSettings
from chalicelib.dlq.letters import DeadLetter
from chalicelib.events.queues import StageQueues
from chalicelib.topology import QUEUE_SHORT_NAMES, QUEUES

SQS_MAX_VISIBILITY = 12 * 3600
# The operator tools read only these: peeking a source queue would hide live messages from
# their consumer and bump their receive count towards maxReceiveCount.
DLQ_SHORT_NAMES = tuple(q.short for q in QUEUES if q.is_dlq)


class UnknownQueue(ValueError):
    """A short name that the topology does not declare."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown queue {name!r}; valid queues: {', '.join(QUEUE_SHORT_NAMES)}")


class NotADeadLetterQueue(ValueError):
    """A queue the operator tools must not read: not one of the topology's dead-letter queues."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name!r} is not a dead-letter queue; valid queues: {', '.join(DLQ_SHORT_NAMES)}")


class QueuePort(Protocol):
    def send(self, short: str, body: str, attributes: dict[str, str], delay_seconds: int = 0) -> str: ...


class SqsQueues:
    """This stage's queues for the reconciler and the operator tools: the shared adapter, plus peeking.

    Only the topology's queues: a name it does not declare is refused before any call.
    """

    def __init__(self, client: Any, settings: CoreSettings) -> None:
        self.client = client
        self.settings = settings
        self._queues = StageQueues(client, settings.queue_name)

    def url(self, short: str) -> str:
        if short not in QUEUE_SHORT_NAMES:
            raise UnknownQueue(short)
        return self._queues.url(short)

    def send(self, short: str, body: str, attributes: dict[str, str], delay_seconds: int = 0) -> str:
        self.url(short)
        return self._queues.send(short, body, attributes, delay_seconds)

    def depth(self, short: str) -> dict[str, int]:
        self.url(short)
        return self._queues.depth(short)

    def peek(self, short: str, limit: int, visibility_seconds: int = 20, release: bool = True) -> list[DeadLetter]:
        """Up to ``limit`` messages, without deleting them; see the module docstring for the caveat.

        ``release=False`` keeps them invisible for ``visibility_seconds`` so the caller can delete
        them with a receipt handle that is still the latest (replay), then ``release`` the rest.
        """
        seen: dict[str, DeadLetter] = {}
        url = self.url(short)
        while len(seen) < limit:
            got = self.client.receive_message(
                QueueUrl=url, MaxNumberOfMessages=min(10, limit - len(seen)), WaitTimeSeconds=0,
                VisibilityTimeout=visibility_seconds, AttributeNames=["All"], MessageAttributeNames=["All"],
            ).get("Messages", [])
            fresh = [m for m in got if m["MessageId"] not in seen]
            if not fresh:
                break
            for message in fresh:
                seen[message["MessageId"]] = DeadLetter.from_sqs_message(message)
        if release:
            self.release(short, list(seen.values()))
        return list(seen.values())

    def release(self, short: str, letters: list[DeadLetter]) -> None:
        """Make peeked messages visible again right away."""
        for letter in letters:
            if letter.receipt_handle:
                try:
                    self.client.change_message_visibility(QueueUrl=self.url(short),
                                                          ReceiptHandle=letter.receipt_handle, VisibilityTimeout=0)
                except Exception:  # noqa: S112 - already deleted by the reconciler; nothing to release
                    continue

    def delete(self, short: str, letter: DeadLetter) -> None:
        if letter.receipt_handle:
            self.client.delete_message(QueueUrl=self.url(short), ReceiptHandle=letter.receipt_handle)
