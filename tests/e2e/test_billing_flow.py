"""Billing end to end on the local stack: register, put SESSION_ENDED on the bus door, read it back via GraphQL."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

pytestmark = pytest.mark.e2e

# Ended minutes ago, not on its DESIGN.md date: billing refuses sessions older than SESSION_MAX_AGE_DAYS.
SEED = {"eventType": "SESSION_ENDED", "sessionId": "6fe27f6e-ff2d-4dda-9f86-3de70e1a4bbf",
        "userId": "0b1732fa-631a-4952-b6d6-2d586ed9dbf8", "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f",
        "energyKwh": 22.4, "durationMinutes": 58,
        "endedAt": (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")}
REGISTER = "mutation R($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }"
WALLET = "{ wallet { balance currency } }"
INVOICES = ("query I($first: Int, $after: String) { invoices(first: $first, after: $after) { nextToken items "
            "{ id number sessionId stationId status currency net vat total issuedAt "
            "lines { component quantity unitPrice amount } } } }")
INVOICE = "query One($id: ID!) { invoice(id: $id) { id total } }"


def register(stack) -> tuple[str, str]:
    tag = uuid.uuid4().hex[:10]
    status, body = stack.graphql(REGISTER, {"input": {
        "email": f"billing.{tag}@example.com", "name": "Bea Biller", "password": "correct horse battery",
        "vehicle": {"brand": "Kia", "model": "EV6", "batteryCapacity": 77.4}}})
    assert status == 200 and "errors" not in body, body
    return body["data"]["register"]["accessToken"], body["data"]["register"]["user"]["id"]


def data(stack, query: str, token: str, variables: dict | None = None) -> dict:
    status, body = stack.graphql(query, variables, token=token)
    assert status == 200 and "errors" not in body, body
    return body["data"]


def test_seed_session_is_billed_once_however_often_it_is_delivered(local_stack):
    token, user_id = register(local_stack)
    # the wallet is opened by choreography (USER_REGISTERED -> wallets queue) with the local demo credit
    local_stack.wait_for(lambda: data(local_stack, WALLET, token)["wallet"], 30)
    assert data(local_stack, WALLET, token)["wallet"] == {"balance": "50.00", "currency": "EUR"}

    session = dict(SEED, userId=user_id)
    assert local_stack.put_event(session)[0] == 202
    # the wallet is debited two steps before the invoice is settled: wait for the settled invoice
    [invoice] = local_stack.wait_for(lambda: [i for i in data(local_stack, INVOICES, token, {"first": 10})[
        "invoices"]["items"] if i["status"] == "PAID"], 60)
    assert data(local_stack, WALLET, token)["wallet"]["balance"] == "39.60"
    assert {k: invoice[k] for k in ("sessionId", "stationId", "status", "currency", "net", "vat", "total")} == {
        "sessionId": SEED["sessionId"], "stationId": SEED["stationId"], "status": "PAID", "currency": "EUR",
        "net": "8.74", "vat": "1.66", "total": "10.40"}
    assert invoice["lines"] == [{"component": "ENERGY", "quantity": "22.4", "unitPrice": "0.39", "amount": "8.74"}]
    assert invoice["number"].startswith("INV-")

    for _ in range(3):
        assert local_stack.put_event(session)[0] == 202
    # wait until the pump has handled the three redeliveries, then check nothing changed
    local_stack.wait_for(lambda: sum(1 for line in local_stack.logs().splitlines()
                                     if "session billed" in line and SEED["sessionId"] in line) >= 4, 60)
    items = data(local_stack, INVOICES, token, {"first": 10})["invoices"]["items"]
    assert [i["id"] for i in items] == [invoice["id"]]
    assert data(local_stack, WALLET, token)["wallet"]["balance"] == "39.60"


def test_someone_elses_invoice_is_not_found(local_stack):
    owner_token, owner_id = register(local_stack)
    other_token, _ = register(local_stack)
    local_stack.wait_for(lambda: data(local_stack, WALLET, owner_token)["wallet"], 30)
    session = dict(SEED, userId=owner_id, sessionId=str(uuid.uuid4()), energyKwh=5)
    assert local_stack.put_event(session)[0] == 202
    items = local_stack.wait_for(lambda: data(local_stack, INVOICES, owner_token)["invoices"]["items"], 60)
    status, body = local_stack.graphql(INVOICE, {"id": items[0]["id"]}, token=other_token)
    assert status == 200 and body["errors"][0]["errorType"] == "NotFound"
    assert data(local_stack, INVOICE, owner_token, {"id": items[0]["id"]})["invoice"]["total"] == "2.32"
