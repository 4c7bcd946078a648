"""The real-time endpoint's wire protocol, message by message, with the websockets client.

What gql does not show: the ``header-<base64url>`` subprotocol (aws-amplify's way),
``connection_ack``'s timeout and ``ka``, ``stop`` -> ``complete``, a dropped client,
and that the WebSocket channel refuses mutations and queries (the HTTP side of that is
``tests/security/test_publish_mutations_are_iam_only.py``).
"""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from websockets.asyncio.client import connect

from tests.e2e.test_realtime_gql import ON_PAYMENT, register, session_ended, wait_for_wallet

pytestmark = pytest.mark.e2e

PUBLISH = ('publishPaymentCompleted(input: {userId: "%s", invoiceId: "i", sessionId: "s", amount: "0.01", '
           'currency: "EUR"}) { userId }')


def _subprotocol_header(token: str) -> str:
    header = json.dumps({"host": "127.0.0.1", "Authorization": token}).encode()
    return "header-" + base64.urlsafe_b64encode(header).rstrip(b"=").decode()


def _start(sub_id: str, query: str, variables: dict, token: str) -> str:
    return json.dumps({"id": sub_id, "type": "start", "payload": {
        "data": json.dumps({"query": query, "variables": variables}),
        "extensions": {"authorization": {"host": "127.0.0.1", "Authorization": token}}}})


async def _next(ws, kind: str, timeout: float = 30) -> dict:
    """The next message of ``kind``, skipping keep-alives."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if message["type"] == kind:
            return message
        assert message["type"] == "ka", message


async def _open(stack, token: str):
    ws = await connect(stack.realtime_url + "/realtime", subprotocols=["graphql-ws", _subprotocol_header(token)])
    await ws.send(json.dumps({"type": "connection_init"}))
    return ws


def test_subprotocol_auth_ack_keepalive_stop_and_a_dropped_client(local_stack):
    token, user_id = register(local_stack)

    async def journey() -> tuple[dict, dict, dict, dict]:
        await wait_for_wallet(local_stack, token)
        ws = await _open(local_stack, token)
        assert ws.subprotocol == "graphql-ws"
        ack = json.loads(await ws.recv())
        first = json.loads(await ws.recv())
        dropped = await _open(local_stack, token)
        await _next(dropped, "connection_ack")
        await dropped.send(_start("d1", ON_PAYMENT, {"u": user_id}, token))
        await _next(dropped, "start_ack")
        dropped.transport.abort()  # gone without a stop or a close frame
        await ws.send(_start("1", ON_PAYMENT, {"u": user_id}, token))
        start_ack = await _next(ws, "start_ack")
        assert (await asyncio.to_thread(local_stack.put_event, session_ended(user_id)))[0] == 202
        data = await _next(ws, "data", 45)
        await ws.send(json.dumps({"type": "stop", "id": "1"}))
        complete = await _next(ws, "complete")
        await ws.close()
        return ack, first, start_ack, {"data": data, "complete": complete}

    ack, first, start_ack, rest = asyncio.run(journey())
    assert ack == {"type": "connection_ack", "payload": {"connectionTimeoutMs": 300000}}
    assert first == {"type": "ka"}
    assert start_ack == {"type": "start_ack", "id": "1"}
    payment = rest["data"]["payload"]["data"]["onPaymentCompleted"]
    assert rest["data"]["id"] == "1" and payment["userId"] == user_id and payment["amount"] == "10.40"
    assert rest["complete"] == {"type": "complete", "id": "1"}


def test_a_start_before_connection_init_or_without_a_subscription_is_an_error(local_stack):
    token, user_id = register(local_stack)

    async def journey() -> tuple[dict, dict, dict]:
        ws = await connect(local_stack.realtime_url, subprotocols=["graphql-ws", _subprotocol_header(token)])
        await ws.send(_start("0", ON_PAYMENT, {"u": user_id}, token))
        early = await _next(ws, "error")
        await ws.send(json.dumps({"type": "connection_init"}))
        await _next(ws, "connection_ack")
        await ws.send(_start("1", "mutation { %s }" % (PUBLISH % user_id), {}, token))
        mutation = await _next(ws, "error")
        await ws.send(_start("2", "query { me { id } }", {}, token))
        query = await _next(ws, "error")
        await ws.close()
        return early, mutation, query

    early, mutation, query = asyncio.run(journey())
    assert early["payload"]["errors"][0]["errorType"] == "UnsupportedOperation"
    assert mutation["id"] == "1" and mutation["payload"]["errors"][0]["errorType"] == "UnsupportedOperation"
    assert query["id"] == "2" and query["payload"]["errors"][0]["errorType"] == "UnsupportedOperation"


def test_a_stale_subscription_id_reused_on_the_connection_is_refused(local_stack):
    token, user_id = register(local_stack)

    async def journey() -> dict:
        ws = await _open(local_stack, token)
        await _next(ws, "connection_ack")
        await ws.send(_start("same", ON_PAYMENT, {"u": user_id}, token))
        await _next(ws, "start_ack")
        await ws.send(_start("same", ON_PAYMENT, {"u": user_id}, token))
        error = await _next(ws, "error")
        await ws.close()
        return error

    error = asyncio.run(journey())
    assert error["id"] == "same" and error["payload"]["errors"][0]["errorType"] == "DuplicatedOperationError"
