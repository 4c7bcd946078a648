"""A late wallet: a session is retried across the reconciler's re-drives, refused only after the last one.

Through the billing Lambda's entry point and the billing DLQ reconciler on moto SQS/EventBridge
and the embedded store. SQS's own redrive (after ``SQS_MAX_RECEIVE_COUNT`` receives) is played
by hand: moto would need five real receives per life. Before, the fifth receive of the first
delivery already refused the session as an unknown user (about 30 s after it ended), so a
registration that was a minute late cost the user a BILLING_FAILED.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from chalicelib import bootstrap
from chalicelib.billing import entry
from chalicelib.billing.plausibility import UNKNOWN_USER
from chalicelib.dlq.entry import reconcile
from chalicelib.events.consumer import Delivery

USER = "0b1732fa-631a-4952-b6d6-2d586ed9dbf8"


def now_iso(**delta: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def bus_body(detail: dict, source: str = "jucr.session") -> str:
    return json.dumps({"version": "0", "id": str(uuid.uuid4()), "detail-type": detail["eventType"],
                       "source": source, "time": now_iso(), "detail": detail})


def session() -> dict:
    return {"eventType": "SESSION_ENDED", "sessionId": str(uuid.uuid4()), "userId": USER,
            "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f", "energyKwh": 22.4, "durationMinutes": 58,
            "endedAt": now_iso(minutes=5)}


def lambda_event(aws, short: str, receive_count: int | None = None) -> tuple[dict, list[dict]]:
    """Everything on ``short`` as Lambda's SQS event (real receipt handles), optionally at ``receive_count``."""
    sqs, url = aws.client("sqs"), aws.queue_url(short)
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                   MessageAttributeNames=["All"]).get("Messages", [])
    count = {"ApproximateReceiveCount": str(receive_count)} if receive_count else {}
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": {**m.get("Attributes", {}), **count}, "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:eu-central-1:123456789012:jucr-test-{short}", "awsRegion": "eu-central-1",
        "messageAttributes": {k: {"stringValue": v["StringValue"], "dataType": v["DataType"]}
                              for k, v in (m.get("MessageAttributes") or {}).items()},
    } for m in messages]}, messages


def sqs_redrives_to_the_dlq(aws) -> None:
    """What SQS does after the last receive of a life: move the message, attributes and all, to billing-dlq."""
    sqs = aws.client("sqs")
    for message in aws.receive_all("billing"):
        sqs.send_message(QueueUrl=aws.queue_url("billing-dlq"), MessageBody=message["Body"],
                         MessageAttributes=message.get("MessageAttributes") or {})


def last_receive_of_a_life(aws) -> dict:
    """Billing gets the session on the life's last receive; a retry is then moved to the DLQ as SQS would."""
    event, _ = lambda_event(aws, "billing", receive_count=aws.settings.queue.max_receive_count)
    assert len(event["Records"]) == 1
    result = entry.handle_sessions(event, None)
    if result["batchItemFailures"]:
        sqs_redrives_to_the_dlq(aws)
    return result


def run_reconciler(aws) -> None:
    event, _ = lambda_event(aws, "billing-dlq")
    assert event["Records"], "a dead letter to reconcile"
    assert reconcile("billing-dlq", event, None) == {"batchItemFailures": []}


def open_wallet(aws) -> None:
    registered = {"eventType": "USER_REGISTERED", "userId": USER, "registeredAt": now_iso(days=1)}
    aws.client("sqs").send_message(QueueUrl=aws.queue_url("wallets"), MessageBody=bus_body(registered, "jucr.auth"))
    event, _ = lambda_event(aws, "wallets")
    assert entry.handle_registrations(event, None) == {"batchItemFailures": []}


@pytest.fixture
def stage(aws, db, monkeypatch):
    """moto + store, re-drives without delay, a capture queue for BILLING_FAILED, one session on billing."""
    monkeypatch.setenv("DLQ_REDRIVE_DELAY_SECONDS", "0")
    bootstrap.reset()
    aws.billing_failed = aws.capture("capture-billing-failed", {"detail-type": ["BILLING_FAILED"]})
    aws.session = session()
    aws.client("sqs").send_message(QueueUrl=aws.queue_url("billing"), MessageBody=bus_body(aws.session))
    return aws


def test_a_wallet_that_opens_after_the_fifth_receive_still_gets_its_session_billed(stage, db):
    assert stage.settings.queue.redrive_limit >= 2, "the wallet opens before the last re-drive"
    assert last_receive_of_a_life(stage)["batchItemFailures"], "no wallet yet: transient, not refused"
    assert db.invoices.count_documents({}) == 0
    run_reconciler(stage)  # re-drive 1
    assert last_receive_of_a_life(stage)["batchItemFailures"]
    run_reconciler(stage)  # re-drive 2
    open_wallet(stage)  # the registration arrives late, before the last re-drive
    assert last_receive_of_a_life(stage) == {"batchItemFailures": []}
    invoice = db.invoices.find_one({"sessionId": stage.session["sessionId"]})
    assert (invoice["status"], invoice["totalCents"]) == ("PAID", 1040)
    assert db.wallets.find_one({"_id": USER})["balanceCents"] == 5000 - 1040
    assert stage.billing_failed() == [], "no compensation for a session that was billed"
    assert sorted(r["action"] for r in db.dead_letters.find()) == ["redriven", "redriven"]
    assert stage.receive_all("billing") == [] and stage.receive_all("billing-dlq") == []


def test_a_wallet_that_never_opens_ends_as_billing_failed_unknown_user_after_the_redrives(stage, db):
    limit = stage.settings.queue.redrive_limit
    for redrive in range(limit):
        assert last_receive_of_a_life(stage)["batchItemFailures"], f"life {redrive}: retried, not refused"
        run_reconciler(stage)
        assert stage.billing_failed() == []
    assert last_receive_of_a_life(stage) == {"batchItemFailures": []}, "the last chance: dead-lettered"
    [letter] = stage.receive_all("billing-dlq")
    attributes = {k: v["StringValue"] for k, v in letter["MessageAttributes"].items()}
    assert (attributes["failureClass"], attributes["errorType"], attributes["failureReason"]) == (
        "permanent", "SessionImplausible", UNKNOWN_USER)
    assert attributes["redriveCount"] == str(limit)
    sqs = stage.client("sqs")
    sqs.send_message(QueueUrl=stage.queue_url("billing-dlq"), MessageBody=letter["Body"],
                     MessageAttributes=letter["MessageAttributes"])
    run_reconciler(stage)
    [failed] = stage.billing_failed()
    assert (failed["sessionId"], failed["reason"]) == (stage.session["sessionId"], UNKNOWN_USER)
    actions = sorted(r["action"] for r in db.dead_letters.find())
    assert actions == ["billing_failed"] + ["redriven"] * limit
    assert db.invoices.count_documents({}) == 0 and db.ledger.count_documents({}) == 0


@pytest.mark.parametrize(("receive_count", "redrive_count", "last"), [
    (5, None, False), (4, "3", False), (5, "2", False), (5, "3", True), (6, "4", True), (5, "three", False),
])
def test_the_last_chance_is_the_last_receive_of_the_last_redrive(receive_count, redrive_count, last):
    attributes = {"redriveCount": {"stringValue": redrive_count, "dataType": "Number"}} if redrive_count else {}
    delivery = Delivery.from_record({"messageId": "m", "body": "{}", "messageAttributes": attributes,
                                     "attributes": {"ApproximateReceiveCount": str(receive_count)}}, "billing")
    assert entry.last_chance(delivery, max_receives=5, redrive_limit=3) is last
