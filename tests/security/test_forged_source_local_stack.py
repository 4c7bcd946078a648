"""On the running local stack, a forged source bills nobody and notifies nobody.

A user subscribes to their invoices. An attacker then puts a SESSION_ENDED and an
INVOICE_GENERATED for that user with their own source through the bus door, and sends a
second forged SESSION_ENDED straight to the billing queue, as a principal with
``sqs:SendMessage`` or a hand-edited rule could. Only the Session Service's genuine
session is billed and pushed; the smuggled one ends in billing-dlq as a permanent
failure that the reconciler audits, naming the field ``source`` but not its value.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import boto3
from gql import Client
from pymongo import MongoClient

from tests.e2e.test_dlq_e2e import decision_for
from tests.e2e.test_realtime_gql import (
    ON_INVOICE,
    SUBSCRIBED,
    collect,
    register,
    session_ended,
    transport,
    wait_for_wallet,
)

ATTACKER = "attacker.anything"


def _smuggle(local_stack, detail: dict) -> None:
    """Send a bus-shaped event with the attacker's source to the billing queue itself."""
    env = local_stack.env
    sqs = boto3.client("sqs", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
                       aws_access_key_id="local", aws_secret_access_key="local")
    url = sqs.get_queue_url(QueueName=f"{env['JUCR_APP_NAME']}-{env['JUCR_STAGE']}-billing")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "SESSION_ENDED", "source": ATTACKER,
        "time": detail["endedAt"], "detail": detail}))


def _forged_invoice(user_id: str) -> dict:
    return {"source": ATTACKER, "detail-type": "INVOICE_GENERATED", "detail": {
        "eventType": "INVOICE_GENERATED", "invoiceId": str(uuid.uuid4()), "invoiceNumber": "INV-FORGED",
        "sessionId": str(uuid.uuid4()), "userId": user_id, "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f",
        "currency": "EUR", "net": "0.01", "vat": "0.00", "total": "0.01", "status": "PAID",
        "issuedAt": "2026-02-21T14:31:00Z"}}


def test_a_forged_source_is_never_billed_and_never_reaches_a_subscriber(local_stack):
    token, user_id = register(local_stack)
    forged, smuggled, genuine = session_ended(user_id), session_ended(user_id), session_ended(user_id)

    async def journey() -> list:
        await wait_for_wallet(local_stack, token)
        pushed: list = []
        async with Client(transport=transport(local_stack, token)) as session:
            task = asyncio.create_task(collect(session, ON_INVOICE, {"u": user_id}, pushed, 10))
            await asyncio.sleep(SUBSCRIBED)
            door = {"source": ATTACKER, "detail-type": "SESSION_ENDED", "detail": forged}
            assert (await asyncio.to_thread(local_stack.put_event, door))[0] == 202
            assert (await asyncio.to_thread(local_stack.put_event, _forged_invoice(user_id)))[0] == 202
            await asyncio.to_thread(_smuggle, local_stack, smuggled)
            assert (await asyncio.to_thread(local_stack.put_event, genuine))[0] == 202

            def settled() -> bool:  # the genuine invoice pushed, and the smuggled session pushed or decided
                ids = [r["onInvoiceGenerated"]["sessionId"] for r in pushed]
                return genuine["sessionId"] in ids and (
                    smuggled["sessionId"] in ids or decision_for(local_stack, smuggled["sessionId"]) is not None)

            await asyncio.to_thread(local_stack.wait_for, settled, 60)
            await asyncio.sleep(2)  # had a forged notification been sent, it would have arrived by now
            task.cancel()
        return pushed

    pushed = [r["onInvoiceGenerated"] for r in asyncio.run(journey())]
    assert [(p["sessionId"], p["invoiceNumber"] == "INV-FORGED") for p in pushed] == [(genuine["sessionId"], False)]
    env = local_stack.env
    invoices = MongoClient(env["MONGODB_URI"], serverSelectionTimeoutMS=5000)[env["MONGODB_DB"]]["invoices"]
    sessions = (genuine["sessionId"], forged["sessionId"], smuggled["sessionId"])
    assert [invoices.count_documents({"sessionId": s}) for s in sessions] == [1, 0, 0]
    audit = decision_for(local_stack, smuggled["sessionId"])
    assert (audit["failureClass"], audit["sourceQueue"], audit["action"]) == ("permanent", "billing", "parked")
    assert audit["reason"].startswith("source:") and ATTACKER not in audit["reason"]
    assert decision_for(local_stack, forged["sessionId"]) is None  # the rule never let it near billing
