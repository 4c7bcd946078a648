"""Plausible events only: a SESSION_ENDED billing cannot believe bills nobody and is dead-lettered permanently.

Through the billing Lambda's entry point on moto SQS/EventBridge and the embedded store,
on the real clock, then (where billing's refusal is the whole story) through the billing
DLQ reconciler: BILLING_FAILED carries the rule that was broken, and the audit has it.
Before, each of these was billed (an old or future session; an unknown user's became an
OPEN invoice on the last receive) or silently resumed (the same sessionId, other usage).
An unknown user is refused only on the session's last chance: the last receive of the
reconciler's last re-drive (``redriveCount`` = ``DLQ_REDRIVE_LIMIT``), since a registration may be late.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from chalicelib.billing import entry
from chalicelib.billing.plausibility import AHEAD, OTHER_USAGE, TOO_OLD, UNKNOWN_USER
from chalicelib.dlq.entry import reconcile

USER = "0b1732fa-631a-4952-b6d6-2d586ed9dbf8"


def iso(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def ago(**delta: float) -> str:
    return iso(dt.datetime.now(dt.UTC) - dt.timedelta(**delta))


def session(**over) -> dict:
    return {"eventType": "SESSION_ENDED", "sessionId": str(uuid.uuid4()), "userId": USER,
            "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f", "energyKwh": 22.4, "durationMinutes": 58,
            "endedAt": ago(minutes=10), **over}


def bus_body(detail: dict, source: str = "jucr.session") -> str:
    return json.dumps({"version": "0", "id": str(uuid.uuid4()), "detail-type": detail["eventType"],
                       "source": source, "time": iso(dt.datetime.now(dt.UTC)), "detail": detail})


def lambda_event(aws, short: str, bodies: list[str], receive_count: int | None = None,
                 redrive_count: int | None = None) -> dict:
    """Put the bodies on ``short`` and receive them back as Lambda's SQS event (real receipt handles).

    ``redrive_count``: sent as the reconciler sends a re-drive (attribute ``redriveCount``).
    """
    sqs, url = aws.client("sqs"), aws.queue_url(short)
    attributes = ({"redriveCount": {"DataType": "String", "StringValue": str(redrive_count)}}
                  if redrive_count is not None else {})
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)
    return records(aws, short, sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                                   MessageAttributeNames=["All"]).get("Messages", []),
                   receive_count)


def records(aws, short: str, messages: list[dict], receive_count: int | None = None) -> dict:
    arn = aws.client("sqs").get_queue_attributes(QueueUrl=aws.queue_url(short),
                                                 AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {"ApproximateReceiveCount": str(receive_count)} if receive_count else {}
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": {**m.get("Attributes", {}), **attributes}, "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": "eu-central-1",
        "messageAttributes": {k: {"stringValue": v["StringValue"], "dataType": v["DataType"]}
                              for k, v in (m.get("MessageAttributes") or {}).items()},
    } for m in messages]}


def open_wallet(aws, user_id: str = USER) -> None:
    registered = {"eventType": "USER_REGISTERED", "userId": user_id, "registeredAt": ago(days=1)}
    event = lambda_event(aws, "wallets", [bus_body(registered, source="jucr.auth")])
    assert entry.handle_registrations(event, None) == {"batchItemFailures": []}


def bill(aws, detail: dict, receive_count: int | None = None, redrive_count: int | None = None) -> dict:
    return entry.handle_sessions(lambda_event(aws, "billing", [bus_body(detail)], receive_count, redrive_count),
                                 None)


def dead_lettered_permanently(aws, reason: str, error_type: str = "SessionImplausible") -> list[dict]:
    """The one letter in billing-dlq, sent by billing as permanent with ``reason``; returned for the reconciler."""
    [letter] = aws.receive_all("billing-dlq")
    attributes = {k: v["StringValue"] for k, v in letter["MessageAttributes"].items()}
    assert (attributes["failureClass"], attributes["failureReason"], attributes["errorType"]) == (
        "permanent", reason, error_type)
    assert aws.receive_all("billing") == [], "not left for a retry"
    return [letter]


def assert_compensated(aws, db, letters: list[dict], detail: dict, reason: str) -> None:
    """The reconciler publishes BILLING_FAILED with billing's reason and writes it into the audit."""
    captured = aws.capture("capture-billing-failed", {"detail-type": ["BILLING_FAILED"]})
    assert reconcile("billing-dlq", records(aws, "billing-dlq", letters), None) == {"batchItemFailures": []}
    [failed] = captured()
    assert (failed["sessionId"], failed["reason"]) == (detail["sessionId"], reason)
    [record] = list(db.dead_letters.find({"businessKey.sessionId": detail["sessionId"]}))
    assert (record["action"], record["failureClass"], record["reason"]) == ("billing_failed", "permanent", reason)


def nothing_billed(db, session_id: str, balance_cents: int | None = 5000) -> None:
    assert db.invoices.count_documents({"sessionId": session_id}) == 0, "no invoice"
    assert db.ledger.count_documents({"sessionId": session_id}) == 0, "no debit, no rejected entry"
    wallet = db.wallets.find_one({"_id": USER})
    assert (wallet and wallet["balanceCents"]) == balance_cents, "balance unchanged"


def test_a_session_that_ended_long_ago_is_refused(aws, db):
    open_wallet(aws)
    old = session(endedAt="2019-06-01T10:00:00Z")  # the reviewer's forged event
    assert bill(aws, old) == {"batchItemFailures": []}
    nothing_billed(db, old["sessionId"])
    assert_compensated(aws, db, dead_lettered_permanently(aws, TOO_OLD), old, TOO_OLD)


def test_a_session_that_ends_in_the_future_is_refused(aws, db):
    open_wallet(aws)
    ahead = session(endedAt=iso(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)))
    assert bill(aws, ahead) == {"batchItemFailures": []}
    nothing_billed(db, ahead["sessionId"])
    assert_compensated(aws, db, dead_lettered_permanently(aws, AHEAD), ahead, AHEAD)


def test_a_user_who_does_not_exist_after_the_retries_is_refused(aws, db):
    stranger = session(userId=str(uuid.uuid4()))
    last, limit = aws.settings.queue.max_receive_count, aws.settings.queue.redrive_limit
    for receive_count, redrive_count in ((last - 1, limit), (last, None), (last, limit - 1)):
        early = bill(aws, stranger, receive_count=receive_count, redrive_count=redrive_count)
        assert len(early["batchItemFailures"]) == 1, "before the last chance the registration may be late: retried"
        assert aws.receive_all("billing-dlq") == [] and db.invoices.count_documents({}) == 0
        aws.receive_all("billing")  # that retry is not received again here
    assert bill(aws, stranger, receive_count=last, redrive_count=limit) == {"batchItemFailures": []}
    nothing_billed(db, stranger["sessionId"], balance_cents=None)
    assert db.wallets.count_documents({}) == 0 and db.ledger.count_documents({}) == 0
    assert_compensated(aws, db, dead_lettered_permanently(aws, UNKNOWN_USER), stranger, UNKNOWN_USER)


@pytest.mark.parametrize(("field", "value"), [
    ("energyKwh", 99.9), ("durationMinutes", 600), ("stationId", "another-station"), ("endedAt", ago(minutes=30)),
], ids=["energyKwh", "durationMinutes", "stationId", "endedAt"])  # fixed ids: xdist workers collect at other instants
def test_a_reused_session_id_with_other_usage_is_refused_and_the_invoice_untouched(aws, db, field, value):
    open_wallet(aws)
    first = session()
    assert bill(aws, first) == {"batchItemFailures": []}
    invoice, balance = db.invoices.find_one({"sessionId": first["sessionId"]}), db.wallets.find_one({})["balanceCents"]
    assert bill(aws, first) == {"batchItemFailures": []}, "an identical redelivery is fine"
    assert aws.receive_all("billing-dlq") == []
    changed = {**first, field: value}
    assert bill(aws, changed) == {"batchItemFailures": []}
    dead_lettered_permanently(aws, f"{OTHER_USAGE} ({field})", error_type="SessionReused")
    assert db.invoices.find_one({"sessionId": first["sessionId"]}) == invoice, "the stored invoice is untouched"
    assert db.wallets.find_one({})["balanceCents"] == balance and balance == 5000 - 1040
    assert db.ledger.count_documents({"sessionId": first["sessionId"]}) == 1
