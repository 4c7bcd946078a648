"""The SQS batch runner and billing entry points against moto SQS/EventBridge and the embedded store."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import uuid

import pytest

from chalicelib.billing import entry
from chalicelib.config import load_section
from chalicelib.events.consumer import TransientError, backoff_seconds, run_batch
from chalicelib.events.settings import QueueSettings
from chalicelib.observability import logger
from chalicelib.store import TransientStoreError
from devstack.chaos_hook import ChaosCrash

# The entry points run on the real clock, so the seed session ends a few minutes ago, not on its
# DESIGN.md date (billing refuses sessions older than SESSION_MAX_AGE_DAYS).
RECENTLY = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
SEED = {"eventType": "SESSION_ENDED", "sessionId": "6fe27f6e-ff2d-4dda-9f86-3de70e1a4bbf",
        "userId": "0b1732fa-631a-4952-b6d6-2d586ed9dbf8", "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f",
        "energyKwh": 22.4, "durationMinutes": 58, "endedAt": RECENTLY}


def bus_event(detail_type: str, detail: dict, source: str = "jucr.session") -> str:
    return json.dumps({"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": source,
                       "account": "123456789012", "time": "2026-02-21T14:31:01Z", "region": "eu-central-1",
                       "resources": [], "detail": detail})


def receive(aws, short: str, bodies: list[str], attributes: dict | None = None) -> dict:
    """Put bodies on the queue and receive them back as Lambda's SQS event (real receipt handles)."""
    url = aws.queue_url(short)
    sqs = aws.client("sqs")
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes or {})
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                              MessageAttributeNames=["All"])["Messages"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    records = [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m["Attributes"], "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
        "eventSourceARN": arn, "awsRegion": "eu-central-1",
        "messageAttributes": {k: {"stringValue": v.get("StringValue"), "dataType": v["DataType"]}
                              for k, v in (m.get("MessageAttributes") or {}).items()},
    } for m in got]
    return {"Records": records}


def registered(user_id: str) -> str:
    return bus_event("USER_REGISTERED", {"eventType": "USER_REGISTERED", "userId": user_id,
                                         "registeredAt": "2026-02-20T10:00:00Z", "eventId": str(uuid.uuid4())},
                     "jucr.auth")


def query_field(name: str) -> dict:
    """The ``info`` of AppSync's resolver request for ``Query.<name>``."""
    return {"fieldName": name, "parentTypeName": "Query"}


def test_wallet_opened_then_session_billed_through_the_queues(aws, db):
    result = entry.handle_registrations(receive(aws, "wallets", [registered(SEED["userId"])] * 2), None)
    assert result == {"batchItemFailures": []}
    assert db.wallets.find_one({"_id": SEED["userId"]})["balanceCents"] == 5000

    bodies = [bus_event("SESSION_ENDED", SEED) for _ in range(3)]  # three deliveries of the same session
    assert entry.handle_sessions(receive(aws, "billing", bodies), None) == {"batchItemFailures": []}
    assert db.invoices.count_documents({}) == 1
    assert db.wallets.find_one({"_id": SEED["userId"]})["balanceCents"] == 5000 - 1040

    me = {"identity": {"resolverContext": {"userId": SEED["userId"]}}}
    wallet = entry.resolve({**me, "info": query_field("wallet"), "arguments": {}}, None)
    assert wallet["balance"] == "39.60" and wallet["currency"] == "EUR"
    page = entry.resolve({**me, "info": query_field("invoices"), "arguments": {"first": 5}}, None)
    assert [(i["total"], i["status"]) for i in page["items"]] == [("10.40", "PAID")]
    one = entry.resolve({**me, "info": query_field("invoice"), "arguments": {"id": page["items"][0]["id"]}}, None)
    assert one["net"] == "8.74" and one["vat"] == "1.66"


def test_poison_record_goes_straight_to_the_dlq_and_neighbours_succeed(aws, db):
    entry.handle_registrations(receive(aws, "wallets", [registered(SEED["userId"])]), None)
    poison = bus_event("SESSION_ENDED", {**SEED, "energyKwh": "lots", "sessionId": str(uuid.uuid4())})
    event = receive(aws, "billing", [poison, bus_event("SESSION_ENDED", SEED), "not json"],
                    attributes={"redriveCount": {"DataType": "Number", "StringValue": "2"}})
    assert entry.handle_sessions(event, None) == {"batchItemFailures": []}
    assert db.invoices.count_documents({}) == 1
    dead = aws.receive_all("billing-dlq")
    assert len(dead) == 2
    by_body = {m["Body"]: m["MessageAttributes"] for m in dead}
    attrs = by_body[poison]
    assert attrs["failureClass"]["StringValue"] == "permanent"
    assert attrs["sourceQueue"]["StringValue"] == "billing"
    assert attrs["redriveCount"]["StringValue"] == "2"
    assert "energyKwh" in attrs["failureReason"]["StringValue"]
    assert "EventBridge event" in by_body["not json"]["failureReason"]["StringValue"]
    assert aws.receive_all("billing") == [], "permanent failures leave the source queue"


def test_missing_wallet_is_retried_with_backoff_then_billed(aws, db):
    event = receive(aws, "billing", [bus_event("SESSION_ENDED", SEED)])
    result = entry.handle_sessions(event, None)
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert aws.receive_all("billing-dlq") == []
    entry.handle_registrations(receive(aws, "wallets", [registered(SEED["userId"])]), None)
    # back-off base is 0 in tests: the message is visible again at once, with receive count 2
    again = receive(aws, "billing", [])
    assert [r["attributes"]["ApproximateReceiveCount"] for r in again["Records"]] == ["2"]
    assert entry.handle_sessions(again, None) == {"batchItemFailures": []}
    assert db.wallets.find_one({"_id": SEED["userId"]})["balanceCents"] == 3960


def test_transient_errors_set_exponential_visibility_and_are_reported(aws, monkeypatch):
    calls = []
    sqs = aws.client("sqs")
    original = sqs.change_message_visibility

    def spy(**kwargs):
        calls.append(kwargs["VisibilityTimeout"])
        return original(**kwargs)

    monkeypatch.setattr(sqs, "change_message_visibility", spy)
    queue = load_section(QueueSettings, {"SQS_BACKOFF_BASE_SECONDS": "2", "SQS_BACKOFF_CAP_SECONDS": "300"})
    failures = iter([TransientStoreError("down"), TransientError("later")])

    def handler(delivery):
        raise next(failures)

    event = receive(aws, "billing", [bus_event("SESSION_ENDED", SEED), bus_event("SESSION_ENDED", SEED)])
    event["Records"][1]["attributes"]["ApproximateReceiveCount"] = "4"
    result = run_batch(event, None, handler, source_queue="billing", queue=queue, sqs=sqs)
    assert len(result["batchItemFailures"]) == 2
    assert calls == [2, 16]
    assert [backoff_seconds(n, 2, 300) for n in (1, 2, 3, 4, 5, 12)] == [2, 4, 8, 16, 32, 300]


def test_resolver_refuses_anonymous_and_unknown_fields(aws):
    from chalicelib.contracts.errors import NotFound, Unauthorized, ValidationError

    with pytest.raises(Unauthorized):
        entry.resolve({"identity": None, "info": query_field("wallet")}, None)
    with pytest.raises(ValidationError):
        entry.resolve({"identity": {"resolverContext": {"userId": "u"}}, "info": query_field("me")}, None)
    with pytest.raises(NotFound):
        entry.resolve({"identity": {"resolverContext": {"userId": "u"}}, "info": query_field("invoice"),
                       "arguments": {"id": str(uuid.uuid4())}}, None)


def test_correlation_id_travels_from_the_incoming_event_to_every_published_event(aws, db):
    """Observability contract: the id an event arrives with is on every event it causes, and in the logs."""
    captured = aws.capture("capture-billing-out", {"source": ["jucr.billing"]})
    entry.handle_registrations(receive(aws, "wallets", [registered(SEED["userId"])]), None)

    session = dict(SEED, correlationId="corr-from-session-service")
    stream = io.StringIO()
    previous = logger.registered_handler.setStream(stream)
    try:
        assert entry.handle_sessions(receive(aws, "billing", [bus_event("SESSION_ENDED", session)]), None) == {
            "batchItemFailures": []}
    finally:
        logger.registered_handler.setStream(previous)

    published = captured()
    assert sorted(p["eventType"] for p in published) == ["INVOICE_GENERATED", "PAYMENT_COMPLETED"]
    assert {p["correlationId"] for p in published} == {"corr-from-session-service"}
    log_lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert log_lines and all(line.get("correlation_id") == "corr-from-session-service" for line in log_lines)


def test_a_reused_session_id_from_another_user_is_dead_lettered_with_its_reason(aws, db):
    other = str(uuid.uuid4())
    entry.handle_registrations(receive(aws, "wallets", [registered(SEED["userId"]), registered(other)]), None)
    assert entry.handle_sessions(receive(aws, "billing", [bus_event("SESSION_ENDED", SEED)]), None) == {
        "batchItemFailures": []}
    reused = bus_event("SESSION_ENDED", {**SEED, "userId": other})
    assert entry.handle_sessions(receive(aws, "billing", [reused]), None) == {"batchItemFailures": []}
    [dead] = aws.receive_all("billing-dlq")
    assert dead["MessageAttributes"]["failureClass"]["StringValue"] == "permanent"
    assert "re-used sessionId" in dead["MessageAttributes"]["failureReason"]["StringValue"]
    assert db.invoices.count_documents({}) == 1
    assert db.wallets.find_one({"_id": other})["balanceCents"] == 5000


def test_a_crash_mid_batch_fails_every_record_of_it_and_the_redelivery_bills_each_once(aws, db, monkeypatch):
    users = [str(uuid.uuid4()) for _ in range(3)]
    entry.handle_registrations(receive(aws, "wallets", [registered(u) for u in users]), None)
    bodies = [bus_event("SESSION_ENDED", {**SEED, "sessionId": str(uuid.uuid4()), "userId": users[i % 3]})
              for i in range(6)]
    real_deps = entry.billing_deps

    def crash_after_ledger(step: str) -> None:
        if step == "ledger_entry_stored":
            raise ChaosCrash(f"chaos: crashed after {step}")

    def crashing_deps():
        deps = real_deps()
        deps.checkpoint = crash_after_ledger
        return deps

    monkeypatch.setattr(entry, "billing_deps", crashing_deps)
    event = receive(aws, "billing", bodies)
    assert len(entry.handle_sessions(event, None)["batchItemFailures"]) == 6
    monkeypatch.setattr(entry, "billing_deps", real_deps)
    again = receive(aws, "billing", [])
    assert entry.handle_sessions(again, None) == {"batchItemFailures": []}
    assert db.invoices.count_documents({"status": "PAID"}) == 6
    assert sorted(w["balanceCents"] for w in db.wallets.find({"_id": {"$in": users}})) == [5000 - 2 * 1040] * 3
    assert db.ledger.count_documents({"kind": "DEBIT", "status": "APPLIED"}) == 6


def test_the_billing_pass_trusts_the_sources_of_the_core_it_is_given(aws, db):
    """The pass that bills and ``run_batch`` that reports read the records with one ``core``: a session from
    the configured publisher is billed, not refused by the pass as untrusted under the process's settings."""
    core = dataclasses.replace(aws.settings.core, session_event_source="acme.sessions")
    assert entry.handle_registrations(receive(aws, "wallets", [registered(SEED["userId"])]), None) == {
        "batchItemFailures": []}
    event = receive(aws, "billing", [bus_event("SESSION_ENDED", SEED, source="acme.sessions")])
    queue = aws.settings.queue
    result = entry.bill_records(event, None, entry.billing_deps(), max_receives=queue.max_receive_count,
                                redrive_limit=queue.redrive_limit, core=core)
    assert result == {"batchItemFailures": []}
    assert aws.receive_all("billing-dlq") == [], "not dead-lettered as UntrustedSource"
    assert db.invoices.find_one({"sessionId": SEED["sessionId"]})["status"] == "PAID"


def test_each_record_of_a_billing_batch_is_read_once(aws, db, monkeypatch):
    """Billing's pass reads the batch and hands its deliveries to the runner, which does not read them again."""
    from chalicelib.events.consumer import Delivery

    entry.handle_registrations(receive(aws, "wallets", [registered(SEED["userId"])]), None)
    reads: list[str] = []
    real = Delivery.from_record.__func__

    def counted(cls, record, *args, **kwargs):
        delivery = real(cls, record, *args, **kwargs)
        reads.append(delivery.message_id)
        return delivery

    monkeypatch.setattr(Delivery, "from_record", classmethod(counted))
    bodies = [bus_event("SESSION_ENDED", {**SEED, "sessionId": str(uuid.uuid4())}) for _ in range(3)]
    assert entry.handle_sessions(receive(aws, "billing", bodies), None) == {"batchItemFailures": []}
    assert db.invoices.count_documents({}) == 3
    assert len(reads) == 3 and len(set(reads)) == 3
