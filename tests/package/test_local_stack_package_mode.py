"""``LOCAL_LAMBDAS=package``: the local stack serves GraphQL and delivers events through the package's functions.

A stack of its own (free ports, its own data dir), driven over HTTP like the e2e suite; the emulator
logs prove each call went through the package and not the in-process handlers.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest

from devstack import lambdas
from devstack.stack_process import start_stack
from tests.conftest import LocalStack

pytestmark = pytest.mark.xdist_group("package")

REGISTER = """mutation($input: RegisterInput!) {
  register(input: $input) { accessToken user { id email } } }"""


@pytest.fixture(scope="module")
def package_stack(package, tmp_path_factory) -> LocalStack:
    stack = start_stack(tmp_path_factory.mktemp("devstack-package"),
                        {"LOCAL_LAMBDAS": "package", "LOCAL_OCM_SYNC_INTERVAL": "3600"}, timeout=180)
    try:
        yield LocalStack.of(stack)
    finally:
        stack.stop()


def _invocations(stack: LocalStack, function: str) -> int:
    log = Path(stack.data_dir) / "package" / "logs" / f"{function}.log"
    return log.read_text(errors="replace").count("\nSTART RequestId:") if log.exists() else 0


def test_graphql_and_events_run_through_the_packaged_functions(package_stack):
    stack = package_stack
    status, body = stack.graphql(REGISTER, {"input": {
        "email": f"pkg-{uuid.uuid4().hex[:8]}@example.com", "name": "Package Mode", "password": "correct horse staple",
        "vehicle": {"brand": "Kia", "model": "EV6", "batteryCapacity": 77.4}}})
    assert status == 200 and "errors" not in body, body
    token, user_id = body["data"]["register"]["accessToken"], body["data"]["register"]["user"]["id"]
    assert stack.graphql("{ me { id } }", token=token) == (200, {"data": {"me": {"id": user_id}}})
    assert stack.graphql("{ me { id } }", token="not-a-token")[0] == 401
    status, refused = stack.graphql('mutation { login(input: {email: "x", password: "y"}) { accessToken } }')
    assert refused["errors"][0]["errorType"] == "ValidationError", "a function's error type reaches the client"

    ended = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    assert stack.put_event({"eventType": "SESSION_ENDED", "sessionId": str(uuid.uuid4()), "userId": user_id,
                            "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f", "energyKwh": 22.4,
                            "durationMinutes": 58, "endedAt": ended})[0] == 202

    def paid():
        # The invoice is stored OPEN and paid in a later step of the same pass, so a poll can see it
        # between the two; wait for the settled state rather than the first sighting.
        _, page = stack.graphql("{ invoices(first: 5) { items { total status } } }", token=token)
        items = (page.get("data") or {}).get("invoices", {}).get("items")
        return items if items and all(item["status"] == "PAID" for item in items) else None

    assert stack.wait_for(paid, timeout=60) == [{"total": "10.40", "status": "PAID"}]
    for function in ("authorizer", "auth_resolver", "billing_resolver", "wallet_opener", "billing_consumer"):
        assert _invocations(stack, function) >= 1, f"{function} did not run from the package"
    assert lambdas.PACKAGE_DIR.joinpath("deployment.zip").exists()
