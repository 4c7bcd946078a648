"""A client of a running local stack: GraphQL and the bus door over HTTP, moto and the store by its settings.

What the e2e tests, the chaos run and the real-time benchmark do to a stack they started
(``devstack/stack_process.py``), written once: they drive it as a client would, over HTTP,
and look behind it only through the endpoints the stack itself reported in ``devstack.json``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.events.queues import StageQueues
from devstack.stack_process import StackProcess


@dataclass
class StackClient:
    """``base_url``: the stack's HTTP root; ``env``: its resolved settings (endpoints, names, stand-in keys)."""

    base_url: str
    env: dict[str, str]
    _clients: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _queues: StageQueues | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def of(cls, stack: StackProcess) -> StackClient:
        return cls(stack.base_url, stack.client_env())

    # -- HTTP, as a client of the API would call it ----------------------------------------------
    def post(self, path: str, payload: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """(status, body): the body as JSON when it is JSON, else as text (an error page)."""
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method="POST",  # noqa: S310 - loopback
                                         headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            body = exc.read()
            try:
                return exc.code, json.loads(body or b"null")
            except ValueError:
                return exc.code, body.decode(errors="replace")

    def graphql(self, query: str, variables: dict | None = None, token: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": token} if token else {}
        return self.post("/graphql", {"query": query, "variables": variables or {}}, headers)

    def put_event(self, event: Any) -> tuple[int, Any]:
        """An event through the bus door, as the Session Service would put it."""
        return self.post("/local/events", event)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.25) -> Any:
        """``predicate()``'s first truthy value; the stack works asynchronously, so tests poll for outcomes."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s; last value {value!r}")
            time.sleep(interval)

    # -- behind the API: moto and the store, at the endpoints the stack reported ---------------------
    def client(self, service: str) -> Any:
        """A boto3 client for moto (one per service, kept; ``mongo`` is the store's client, see ``database``)."""
        if service not in self._clients:
            import boto3

            env = self.env
            self._clients[service] = boto3.client(
                service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
                aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
        return self._clients[service]

    @property
    def queues(self) -> StageQueues:
        """The stack's queues by short name (``billing``, ``billing-dlq``), through the runtime's own adapter."""
        if self._queues is None:
            self._queues = StageQueues.for_stage(self.client("sqs"), self.env["JUCR_APP_NAME"], self.env["JUCR_STAGE"])
        return self._queues

    def database(self) -> Any:
        """The stack's database (one client, kept; a long server-selection wait rides out a store restart)."""
        if "mongo" not in self._clients:
            from pymongo import MongoClient

            self._clients["mongo"] = MongoClient(self.env["MONGODB_URI"], serverSelectionTimeoutMS=30000,
                                                 tz_aware=True)
        return self._clients["mongo"][self.env["MONGODB_DB"]]
