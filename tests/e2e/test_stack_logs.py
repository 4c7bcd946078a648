"""The local stack's log tells what happened: the pump's real outcome per message, one line per bus event, no PII."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.e2e.test_billing_flow import REGISTER, SEED, WALLET, data

pytestmark = pytest.mark.e2e


def stack_lines(text: str) -> list[dict]:
    """The stack's own JSON lines (pumps, bus log, schedule): they start with its timestamp."""
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"ts"')]


def test_pump_and_bus_lines_tell_the_outcome_and_ids_without_personal_data(local_stack):
    offset = len(local_stack.logs())
    email = f"logs.{uuid.uuid4().hex[:10]}@example.com"
    status, body = local_stack.graphql(REGISTER, {"input": {
        "email": email, "name": "Lou Logreader", "password": "correct horse battery",
        "vehicle": {"brand": "Kia", "model": "EV6", "batteryCapacity": 77.4}}})
    assert status == 200 and "errors" not in body, body
    token, user_id = body["data"]["register"]["accessToken"], body["data"]["register"]["user"]["id"]
    local_stack.wait_for(lambda: data(local_stack, WALLET, token)["wallet"], 30)
    good, poison = str(uuid.uuid4()), str(uuid.uuid4())
    assert local_stack.put_event(dict(SEED, userId=user_id, sessionId=good, energyKwh=5))[0] == 202
    assert local_stack.put_event(dict(SEED, userId=user_id, sessionId=poison, energyKwh=-3))[0] == 202

    def pump_outcomes() -> dict[str, str]:
        lines = stack_lines(local_stack.logs()[offset:])
        return {entry["outcome"] for entry in lines if entry.get("pump") == "billing"}

    local_stack.wait_for(lambda: {"billed", "dead-lettered"} <= pump_outcomes(), 60)
    local_stack.wait_for(lambda: any(e.get("bus") == "PAYMENT_COMPLETED" and e.get("sessionId") == good
                                     for e in stack_lines(local_stack.logs()[offset:])), 30)
    lines = stack_lines(local_stack.logs()[offset:])
    wallets = [e for e in lines if e.get("pump") == "wallets"]
    assert wallets and wallets[0]["outcome"] == "wallet-opened", wallets
    bus = [e for e in lines if "bus" in e]
    ended = [e for e in bus if e["bus"] == "SESSION_ENDED" and e.get("sessionId") == good]
    assert len(ended) == 1, "logged once"
    assert ended[0]["source"] == "jucr.session" and ended[0]["userId"] == user_id and ended[0]["busEventId"]
    [invoice] = [e for e in bus if e["bus"] == "INVOICE_GENERATED" and e.get("sessionId") == good]
    assert invoice["source"] == "jucr.billing" and invoice["invoiceId"] and invoice["eventId"]
    [paid] = [e for e in bus if e["bus"] == "PAYMENT_COMPLETED" and e.get("sessionId") == good]
    assert paid["invoiceId"] == invoice["invoiceId"] and paid["userId"] == user_id
    assert any(e["bus"] == "USER_REGISTERED" and e.get("userId") == user_id for e in bus)
    assert email not in local_stack.logs() and email.split("@")[0] not in local_stack.logs()
    assert "Lou Logreader" not in local_stack.logs()
