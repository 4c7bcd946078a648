"""Who is subscribed to what, and AppSync's argument filter on every published event.

AppSync fires a subscription for each mutation named in its ``@aws_subscribe``
and, when the subscriber gave arguments, only if each argument equals the
same-named field of the mutation's result (``onPaymentCompleted(userId: A)``
receives only A's payments). Runs on the real-time server's event loop.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

# A subscriber that cannot keep up is cut off rather than let memory grow without bound.
MAX_PENDING = 1000


class Hub:
    def __init__(self, mutations: dict[str, list[str]]) -> None:
        self.mutations = mutations
        self._ids = itertools.count(1)
        self._subscribers: dict[int, tuple[str, dict[str, Any], asyncio.Queue]] = {}

    def __len__(self) -> int:
        return len(self._subscribers)

    def publish(self, mutation: str, payload: dict[str, Any]) -> int:
        """Queue ``payload`` for every matching subscriber; returns how many matched."""
        matched = 0
        for field, args, queue in list(self._subscribers.values()):
            if mutation not in self.mutations.get(field, []) or not _matches(args, payload):
                continue
            if queue.qsize() < MAX_PENDING:
                queue.put_nowait({field: payload})
                matched += 1
        return matched

    def stream(self, field: str, args: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Register now (so nothing published after ``start_ack`` is missed) and stream until closed."""
        key = next(self._ids)
        queue: asyncio.Queue = asyncio.Queue()
        self._subscribers[key] = (field, dict(args), queue)
        return self._drain(key, queue)

    async def _drain(self, key: int, queue: asyncio.Queue) -> AsyncIterator[dict[str, Any]]:
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.pop(key, None)


def _matches(args: dict[str, Any], payload: dict[str, Any]) -> bool:
    """Null arguments do not filter; given ones must equal the payload's field (IDs compare as text)."""
    return all(value is None or str(payload.get(name)) == str(value) for name, value in args.items())
