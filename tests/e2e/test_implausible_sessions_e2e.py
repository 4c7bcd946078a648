"""An implausible SESSION_ENDED on the running local stack: billed to nobody, compensated, and on-call sees why."""

from __future__ import annotations

import json
import uuid

import pytest

from chalicelib.billing.plausibility import TOO_OLD
from chalicelib.contracts.events import BILLING_FAILED, derived_event_id

pytestmark = pytest.mark.e2e

REGISTER = "mutation R($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }"
ACCOUNT = "{ wallet { balance } invoices(first: 5) { items { id } } }"


def account(stack, token: str) -> dict:
    status, body = stack.graphql(ACCOUNT, token=token)
    assert status == 200 and "errors" not in body, body
    return body["data"]


def billing_dlq_audit(stack) -> list[dict]:
    """``python -m chalicelib dlq audit --queue billing-dlq``: one JSON record per line (``[]`` when none)."""
    done = stack.cli("dlq", "audit", "--queue", "billing-dlq")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip() not in ("", "[]")]


def decision_for(stack, session_id: str) -> dict | None:
    return next((r for r in billing_dlq_audit(stack) if r.get("kind") == "decision" and r.get("status") == "done"
                 and (r.get("businessKey") or {}).get("sessionId") == session_id), None)


def test_a_session_that_ended_long_ago_is_audited_as_billing_failed_and_shown_by_the_cli(local_stack):
    tag = uuid.uuid4().hex[:10]
    status, body = local_stack.graphql(REGISTER, {"input": {
        "email": f"old.session.{tag}@example.com", "name": "Olga Old", "password": "correct horse battery",
        "vehicle": {"brand": "Kia", "model": "EV6", "batteryCapacity": 77.4}}})
    assert status == 200 and "errors" not in body, body
    token, user_id = body["data"]["register"]["accessToken"], body["data"]["register"]["user"]["id"]
    local_stack.wait_for(lambda: account(local_stack, token)["wallet"], 30)  # opened by USER_REGISTERED

    old = {"eventType": "SESSION_ENDED", "sessionId": str(uuid.uuid4()), "userId": user_id,
           "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f", "energyKwh": 22.4, "durationMinutes": 58,
           "endedAt": "2019-06-01T10:00:00Z"}
    assert local_stack.put_event(old)[0] == 202
    record = local_stack.wait_for(lambda: decision_for(local_stack, old["sessionId"]), 60)
    assert (record["action"], record["failureClass"], record["reason"]) == ("billing_failed", "permanent", TOO_OLD)
    assert (record["sourceQueue"], record["eventType"]) == ("billing", "SESSION_ENDED")
    assert record["result"] == {"published": BILLING_FAILED,
                                "eventId": derived_event_id(BILLING_FAILED, f"{old['sessionId']}:p0")}
    assert "2019" not in record["reason"], "the reason names the rule, not the value"
    # Billing's own verdict (not SQS giving up after the retries), compensated on the first decision.
    assert (record["errorType"], record["redriveCount"]) == ("SessionImplausible", 0)
    assert account(local_stack, token) == {"wallet": {"balance": "50.00"}, "invoices": {"items": []}}
