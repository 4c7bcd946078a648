"""Subscriptions on the local stack, proven with a client we did not write: gql's AppSync transport.

The journey: a user subscribes over the real-time endpoint, a SESSION_ENDED is put
on the bus door, billing runs, and the bus -> AppSync rules (the deploy step's)
publish INVOICE_GENERATED and PAYMENT_COMPLETED to the right subscriber only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest
from gql import Client
from gql.graphql_request import GraphQLRequest
from gql.transport.appsync_auth import AppSyncJWTAuthentication
from gql.transport.appsync_websockets import AppSyncWebsocketsTransport
from gql.transport.exceptions import TransportQueryError, TransportServerError

pytestmark = pytest.mark.e2e

REGISTER = "mutation R($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }"
ON_INVOICE = ("subscription I($u: ID!) { onInvoiceGenerated(userId: $u) "
              "{ userId invoiceId invoiceNumber sessionId total currency status } }")
ON_PAYMENT = "subscription P($u: ID!) { onPaymentCompleted(userId: $u) { userId invoiceId sessionId amount currency } }"
ON_SYNC = "subscription { onOcmSyncCompleted { startedAt finishedAt processed updated failed } }"
INVOICES = "{ invoices(first: 10) { items { id sessionId total } } }"
# How long a start takes to be registered after the client sent it (loopback + one authorizer call).
SUBSCRIBED = 1.0


def register(stack) -> tuple[str, str]:
    status, body = stack.graphql(REGISTER, {"input": {
        "email": f"rt.{uuid.uuid4().hex[:10]}@example.com", "name": "Rita Realtime",
        "password": "correct horse battery", "vehicle": {"brand": "Kia", "model": "EV6", "batteryCapacity": 77.4}}})
    assert status == 200 and "errors" not in body, body
    return body["data"]["register"]["accessToken"], body["data"]["register"]["user"]["id"]


def session_ended(user_id: str) -> dict[str, Any]:
    return {"eventType": "SESSION_ENDED", "sessionId": str(uuid.uuid4()), "userId": user_id,
            "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f", "energyKwh": 22.4, "durationMinutes": 58,
            "endedAt": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


def transport(stack, token: str) -> AppSyncWebsocketsTransport:
    return AppSyncWebsocketsTransport(url=stack.realtime_url,
                                      auth=AppSyncJWTAuthentication(host=stack.base_url.split("//")[1], jwt=token))


async def collect(session, query: str, variables: dict | None, into: list, count: int) -> None:
    async for result in session.subscribe(GraphQLRequest(query, variable_values=variables)):
        into.append(result)
        if len(into) >= count:
            return


async def wait_for_wallet(stack, token: str) -> None:
    """The wallet is opened by choreography; a session billed before it exists fails the payment."""
    for _ in range(120):
        status, body = await asyncio.to_thread(stack.graphql, "{ wallet { balance } }", None, token)
        if status == 200 and (body.get("data") or {}).get("wallet"):
            return
        await asyncio.sleep(0.25)
    raise AssertionError("wallet never opened")


def test_owner_receives_their_invoice_and_payment_and_nobody_elses(local_stack):
    token_a, user_a = register(local_stack)
    token_b, user_b = register(local_stack)

    async def journey() -> tuple[list, list, dict, dict]:
        await wait_for_wallet(local_stack, token_a)
        await wait_for_wallet(local_stack, token_b)
        invoices: list = []
        payments: list = []
        async with Client(transport=transport(local_stack, token_a)) as session:
            tasks = [asyncio.create_task(collect(session, ON_INVOICE, {"u": user_a}, invoices, 2)),
                     asyncio.create_task(collect(session, ON_PAYMENT, {"u": user_a}, payments, 2))]
            await asyncio.sleep(SUBSCRIBED)
            theirs = session_ended(user_b)
            assert (await asyncio.to_thread(local_stack.put_event, theirs))[0] == 202
            ours = session_ended(user_a)
            assert (await asyncio.to_thread(local_stack.put_event, ours))[0] == 202
            done, _ = await asyncio.wait(tasks, timeout=45)
            await asyncio.sleep(2)  # had B's notifications leaked, they would have arrived by now
            for task in tasks:
                task.cancel()
        return invoices, payments, ours, theirs

    invoices, payments, ours, _theirs = asyncio.run(journey())
    status, body = local_stack.graphql(INVOICES, token=token_a)
    [stored] = [i for i in body["data"]["invoices"]["items"] if i["sessionId"] == ours["sessionId"]]
    assert [r["onInvoiceGenerated"] for r in invoices] == [{
        "userId": user_a, "invoiceId": stored["id"], "invoiceNumber": invoices[0]["onInvoiceGenerated"][
            "invoiceNumber"], "sessionId": ours["sessionId"], "total": "10.40", "currency": "EUR",
        "status": invoices[0]["onInvoiceGenerated"]["status"]}]
    assert invoices[0]["onInvoiceGenerated"]["invoiceNumber"].startswith("INV-")
    assert [r["onPaymentCompleted"] for r in payments] == [{
        "userId": user_a, "invoiceId": stored["id"], "sessionId": ours["sessionId"], "amount": "10.40",
        "currency": "EUR"}]


def test_subscribing_to_another_users_notifications_is_refused(local_stack):
    token_a, _user_a = register(local_stack)
    _token_b, user_b = register(local_stack)

    async def attempt() -> None:
        async with Client(transport=transport(local_stack, token_a)) as session:
            await collect(session, ON_PAYMENT, {"u": user_b}, [], 1)

    with pytest.raises(TransportQueryError) as refused:
        asyncio.run(attempt())
    assert _appsync_error(refused.value)["errorType"] == "Unauthorized"
    assert "onPaymentCompleted" in _appsync_error(refused.value)["message"]


@pytest.mark.parametrize("token", ["not-a-jwt", "expired"])
def test_a_bad_or_expired_token_is_refused_at_connection_init(local_stack, token):
    if token == "expired":
        token = _expired_token(register(local_stack)[1])

    async def attempt() -> None:
        async with Client(transport=transport(local_stack, token)) as session:
            await collect(session, ON_SYNC, None, [], 1)

    with pytest.raises(TransportServerError) as refused:
        asyncio.run(attempt())
    assert "UnauthorizedException" in str(refused.value)


def test_a_bad_token_at_start_is_refused_even_on_an_authorized_connection(local_stack):
    token, user_id = register(local_stack)

    async def attempt() -> None:
        t = transport(local_stack, token)
        async with Client(transport=t) as session:
            t.auth = AppSyncJWTAuthentication(host="local", jwt="not-a-jwt")  # what start's extensions carry
            await collect(session, ON_INVOICE, {"u": user_id}, [], 1)

    with pytest.raises(TransportQueryError) as refused:
        asyncio.run(attempt())
    assert _appsync_error(refused.value)["errorType"] == "UnauthorizedException"


def test_ocm_sync_completed_reaches_every_subscriber_and_a_look_alike_source_does_not(local_stack):
    token, _ = register(local_stack)
    payload = {"eventType": "OCM_SYNC_COMPLETED", "source": "ocm-sync-worker", "startedAt": "2026-02-21T06:00:00Z",
               "finishedAt": "2026-02-21T06:02:18Z", "processed": 25000, "updated": 418, "failed": 0}

    async def journey() -> list:
        got: list = []
        async with Client(transport=transport(local_stack, token)) as session:
            task = asyncio.create_task(collect(session, ON_SYNC, None, got, 2))
            await asyncio.sleep(SUBSCRIBED)
            forged = {"source": "jucr.session", "detail-type": "OCM_SYNC_COMPLETED", "detail": dict(payload, failed=9)}
            assert (await asyncio.to_thread(local_stack.put_event, forged))[0] == 202
            assert (await asyncio.to_thread(local_stack.put_event, payload))[0] == 202
            await asyncio.wait([task], timeout=5)
            task.cancel()
        return got

    got = [r["onOcmSyncCompleted"] for r in asyncio.run(journey())]
    assert {"startedAt": "2026-02-21T06:00:00Z", "finishedAt": "2026-02-21T06:02:18Z", "processed": 25000,
            "updated": 418, "failed": 0} in got
    assert all(item["failed"] != 9 for item in got)  # the rule matches source as well as detail-type


def _appsync_error(exc: TransportQueryError) -> dict[str, Any]:
    """gql hands over an ``error`` message's whole payload: ``{"errors": [{errorType, message}]}``."""
    payload = (exc.errors or [{}])[0]
    return payload.get("errors", [payload])[0]


def _expired_token(user_id: str) -> str:
    import jwt

    from chalicelib.auth.keys import DEV_KEY_DIR, dev_keyring
    from chalicelib.sections import load_stage_settings

    defaults = load_stage_settings({})
    past = int(dt.datetime.now(dt.UTC).timestamp()) - 3600
    claims = {"iss": defaults.authorizer.jwt_issuer, "aud": defaults.authorizer.jwt_audience, "sub": user_id,
              "iat": past, "exp": past + 60, "jti": uuid.uuid4().hex, "ver": 0}
    return jwt.encode(claims, dev_keyring(DEV_KEY_DIR).signing_key(), algorithm="EdDSA")
