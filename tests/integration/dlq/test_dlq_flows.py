"""Reconciler and replay through their entry points: moto SQS/EventBridge, the embedded store.

A capture queue behind a bus rule for BILLING_FAILED shows what the session
service would receive.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid

import pytest

from chalicelib import bootstrap
from chalicelib.__main__ import main as cli_main
from chalicelib.dlq.entry import reconcile
from devstack.pump import drain_queue


class Ctx:
    aws_request_id = "req-1"
    function_name = "reconcile_billing_dlq"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60000


# An hour ago: billing refuses a session older than SESSION_MAX_AGE_DAYS, whatever the reconciler decided.
ENDED_AT = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def session(session_id: str | None = None, **over) -> dict:
    return {"eventType": "SESSION_ENDED", "sessionId": session_id or str(uuid.uuid4()),
            "userId": "0b1732fa-631a-4952-b6d6-2d586ed9dbf8", "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f",
            "energyKwh": 22.4, "durationMinutes": 58, "endedAt": ENDED_AT, **over}


def bus_body(detail: dict) -> str:
    return json.dumps({"version": "0", "id": str(uuid.uuid4()), "detail-type": detail["eventType"],
                       "source": "jucr.session", "time": "2026-02-21T14:31:01Z", "detail": detail})


@pytest.fixture
def stage(aws, db, monkeypatch):
    """moto + store, re-drives without delay, and a capture queue for BILLING_FAILED."""
    monkeypatch.setenv("DLQ_REDRIVE_DELAY_SECONDS", "0")
    monkeypatch.setenv("JUCR_NO_LOCAL_STACK", "1")
    bootstrap.reset()
    sqs, events = aws.client("sqs"), aws.client("events")
    capture_url = sqs.create_queue(QueueName="capture")["QueueUrl"]
    capture_arn = sqs.get_queue_attributes(QueueUrl=capture_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="capture", EventBusName=aws.settings.event_bus_name,
                    EventPattern=json.dumps({"detail-type": ["BILLING_FAILED"]}))
    events.put_targets(Rule="capture", EventBusName=aws.settings.event_bus_name,
                       Targets=[{"Id": "capture", "Arn": capture_arn}])
    aws.captured = lambda: [json.loads(m["Body"])["detail"] for m in drain_queue(sqs, capture_url)]
    return aws




def put_dead(aws, body: str, **attrs: str) -> None:
    aws.client("sqs").send_message(QueueUrl=aws.queue_url("billing-dlq"), MessageBody=body, MessageAttributes={
        k: {"DataType": "String", "StringValue": v} for k, v in attrs.items()})


def lambda_event(messages: list[dict]) -> dict:
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-central-1:123456789012:jucr-test-billing-dlq", "awsRegion": "eu-central-1",
        "messageAttributes": {k: {"stringValue": v["StringValue"], "dataType": "String"}
                              for k, v in (m.get("MessageAttributes") or {}).items()},
    } for m in messages]}


def run_reconciler(aws) -> tuple[dict, list[dict]]:
    """Deliver whatever is in billing-dlq to the reconciler once, as Lambda would."""
    messages = aws.receive_all("billing-dlq")
    return reconcile("billing-dlq", lambda_event(messages), Ctx()), messages


def test_poison_session_gets_billing_failed_audited_and_a_duplicate_is_handled_once(stage, db):
    detail = session(energyKwh="lots")
    body = bus_body(detail)
    put_dead(stage, body, failureClass="permanent", failureReason="energyKwh: not a number", sourceQueue="billing")
    result, messages = run_reconciler(stage)
    assert result == {"batchItemFailures": []}
    [failed] = stage.captured()
    assert (failed["sessionId"], failed["userId"]) == (detail["sessionId"], detail["userId"])
    assert failed["originalEventId"] == json.loads(body)["id"] and failed["reason"].startswith("invalid payload")
    [record] = list(db.dead_letters.find())
    assert (record["action"], record["status"], record["eventType"]) == ("billing_failed", "done", "SESSION_ENDED")
    assert record["businessKey"] == {"sessionId": detail["sessionId"], "userId": detail["userId"]}

    # The same dead letter delivered again (at-least-once): no second event, no second record.
    assert reconcile("billing-dlq", lambda_event(messages), Ctx()) == {"batchItemFailures": []}
    assert stage.captured() == []
    assert db.dead_letters.count_documents({}) == 1


def test_transient_dead_letters_are_redriven_a_bounded_number_of_times(stage, db):
    put_dead(stage, bus_body(session()))
    limit = stage.settings.redrive_limit
    for expected in range(1, limit + 1):
        run_reconciler(stage)
        [back] = stage.receive_all("billing")  # the consumer fails it again...
        assert back["MessageAttributes"]["redriveCount"]["StringValue"] == str(expected)
        attrs = {k: v["StringValue"] for k, v in back["MessageAttributes"].items()}
        put_dead(stage, back["Body"], **attrs)  # ...and SQS moves it to the DLQ after maxReceiveCount
        assert stage.captured() == []
    run_reconciler(stage)
    assert stage.receive_all("billing") == []
    [failed] = stage.captured()
    assert f"after {limit} re-drive(s)" in failed["reason"]
    actions = sorted(r["action"] for r in db.dead_letters.find())
    assert actions == ["billing_failed"] + ["redriven"] * limit


def test_a_failing_store_reports_the_record_as_a_batch_failure(stage, monkeypatch):
    put_dead(stage, bus_body(session()))

    def broken(self, record):
        from chalicelib.store import TransientStoreError

        raise TransientStoreError("store unavailable")

    monkeypatch.setattr("chalicelib.dlq.repository.DeadLetterRepository.claim", broken)
    messages = stage.receive_all("billing-dlq")
    event = lambda_event(messages)
    event["Records"].append(dict(event["Records"][0], messageId="ok-neighbour", body="not json"))
    monkeypatch.setattr("chalicelib.dlq.repository.DeadLetterRepository.claim",
                        lambda self, record: None if record["messageId"] == "ok-neighbour" else broken(self, record))
    result = reconcile("billing-dlq", event, Ctx())
    assert result == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}


def cli(capsys, *args: str) -> list[dict]:
    code = cli_main(["dlq", *args])
    # JSON lines, or a lone [] when nothing matched
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip() not in ("", "[]")]
    assert code == 0, lines
    return lines


def test_replay_dry_run_changes_nothing_then_replays_once_and_skips_invoiced_and_invalid(stage, db, capsys):
    fixed = session()
    invoiced = session()
    put_dead(stage, bus_body(fixed), failureClass="permanent", failureReason="tariff missing")
    put_dead(stage, bus_body(invoiced), failureClass="permanent", failureReason="tariff missing")
    put_dead(stage, bus_body(session(durationMinutes=-5)), failureClass="permanent", failureReason="bad")
    run_reconciler(stage)
    capsys.readouterr()  # the reconciler's logs and metrics
    assert len(stage.captured()) == 3
    db.invoices.insert_one({"_id": "inv-1", "sessionId": invoiced["sessionId"], "eventsPublished": True})
    before = sorted(map(str, db.dead_letters.find()))

    [summary, *rows] = cli(capsys, "replay", "--queue", "billing-dlq")
    assert summary["dryRun"] is True and summary["wouldReplay"] == 1
    verdicts = {r["businessKey"]["sessionId"]: r["verdict"] for r in rows}
    assert verdicts[fixed["sessionId"]] == "replay" and verdicts[invoiced["sessionId"]] == "already-applied"
    assert sorted(verdicts.values()) == ["already-applied", "invalid", "replay"]
    assert sorted(map(str, db.dead_letters.find())) == before
    assert stage.receive_all("billing") == []

    [summary, *rows] = cli(capsys, "replay", "--queue", "billing-dlq", "--execute", "--operator", "oncall-1")
    assert summary["replayed"] == 1
    [sent] = stage.receive_all("billing")
    assert json.loads(sent["Body"])["detail"]["sessionId"] == fixed["sessionId"]
    assert sent["MessageAttributes"]["replayCount"]["StringValue"] == "1"

    [summary, *_] = cli(capsys, "replay", "--queue", "billing-dlq", "--execute", "--operator", "oncall-1")
    assert summary["toReplay"] == 0 and stage.receive_all("billing") == []

    audit = cli(capsys, "audit", "--queue", "billing-dlq")
    replays = [r for r in audit if r["kind"] == "replay" and r["action"] == "replay"]
    assert [(r["operator"], r["result"]["outcome"]) for r in replays] == [("oncall-1", "replayed")]
    assert {r["action"] for r in audit if r["kind"] == "replay"} >= {"skip:already-applied", "skip:invalid"}
    assert all("body" not in r for r in audit)


def test_replay_of_messages_still_in_the_queue_deletes_them_and_list_does_not(stage, capsys):
    detail = session()
    put_dead(stage, bus_body(detail))
    listed = cli(capsys, "list", "--queue", "billing-dlq")
    assert [r["businessKey"]["sessionId"] for r in listed] == [detail["sessionId"]]
    assert listed[0]["origin"] == "queue"
    shown = cli(capsys, "show", "--queue", "billing-dlq", listed[0]["messageId"])
    assert shown[0]["body"]["sessionId"] == detail["sessionId"]
    [summary, *_] = cli(capsys, "replay", "--queue", "billing-dlq", "--execute", "--operator", "me")
    assert summary["replayed"] == 1
    assert len(stage.receive_all("billing")) == 1
    assert stage.receive_all("billing-dlq") == []


def test_more_than_five_need_confirmation(stage, monkeypatch, capsys):
    for _ in range(6):
        put_dead(stage, bus_body(session()))
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    code = cli_main(["dlq", "replay", "--queue", "billing-dlq", "--execute"])
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1 and out[0]["aborted"] is True
    assert stage.receive_all("billing") == []
    [summary, *_] = cli(capsys, "replay", "--queue", "billing-dlq", "--execute", "--yes", "--max", "10")
    assert summary["replayed"] == 6 and len(stage.receive_all("billing")) == 6


def test_filters_and_unknown_queue(stage, capsys):
    put_dead(stage, bus_body(session()))
    assert cli(capsys, "list", "--queue", "billing-dlq", "--event-type", "USER_REGISTERED") == []
    assert cli(capsys, "list", "--queue", "billing-dlq", "--older-than", "1d") == []
    assert len(cli(capsys, "list", "--queue", "billing-dlq", "--newer-than", "1h")) == 1
    with pytest.raises(SystemExit):
        cli_main(["dlq", "list", "--queue", "nope"])
    assert "valid queues: billing-dlq" in capsys.readouterr().err


@pytest.mark.parametrize("action", ["list", "replay"])
def test_source_queues_are_refused_and_left_untouched(stage, capsys, action):
    detail = session()
    stage.client("sqs").send_message(QueueUrl=stage.queue_url("billing"), MessageBody=bus_body(detail))
    with pytest.raises(SystemExit):
        cli_main(["dlq", action, "--queue", "billing", *(["--execute", "--yes"] if action == "replay" else [])])
    assert "'billing' is not a dead-letter queue; valid queues: billing-dlq, wallets-dlq, ocm-sync-dlq" in \
        capsys.readouterr().err
    [live] = stage.receive_all("billing")  # still visible to its consumer, received once (by this assertion)
    assert live["Attributes"]["ApproximateReceiveCount"] == "1"


# --- a session billing already invoiced (bus down for longer than the retries) ------------------

def _bill_with_the_bus_down(db, settings, detail: dict) -> str:
    """Billing stores the invoice and debits, then cannot publish: what a long bus outage leaves behind."""
    from chalicelib.billing.repository import BillingRepository
    from chalicelib.billing.service import BillingDeps, BillingPolicy, bill_session, invoice_id_for, open_wallet
    from chalicelib.contracts.events import USER_REGISTERED, parse_event
    from chalicelib.events.publisher import PublishError, RecordingPublisher

    deps = BillingDeps(repo=BillingRepository(db), publisher=RecordingPublisher(fail_next=1),
                       clock=bootstrap.utc_now, policy=BillingPolicy.from_settings(settings))
    open_wallet(deps, parse_event(USER_REGISTERED, {"eventType": USER_REGISTERED, "userId": detail["userId"],
                                                    "registeredAt": "2026-02-21T10:00:00Z"}))
    with pytest.raises(PublishError):
        bill_session(deps, parse_event("SESSION_ENDED", detail))
    invoice = db.invoices.find_one({"_id": invoice_id_for(detail["sessionId"])})
    assert invoice["status"] == "PAID" and not invoice.get("eventsPublished")
    return invoice["_id"]


def _capture(stage, detail_types: list[str]):
    sqs, events = stage.client("sqs"), stage.client("events")
    url = sqs.create_queue(QueueName="capture-billing")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="capture-billing", EventBusName=stage.settings.event_bus_name,
                    EventPattern=json.dumps({"detail-type": detail_types}))
    events.put_targets(Rule="capture-billing", EventBusName=stage.settings.event_bus_name,
                       Targets=[{"Id": "capture-billing", "Arn": arn}])
    return lambda: [(json.loads(m["Body"])["detail-type"], json.loads(m["Body"])["detail"])
                    for m in drain_queue(sqs, url)]


def test_an_invoiced_session_with_unpublished_events_is_redriven_never_billing_failed(stage, db):
    detail = session()
    _bill_with_the_bus_down(db, stage.settings, detail)
    put_dead(stage, bus_body(detail))  # SQS moved it after maxReceiveCount: PublishError on every receive
    assert run_reconciler(stage)[0] == {"batchItemFailures": []}
    assert stage.captured() == []
    [back] = stage.receive_all("billing")
    assert json.loads(back["Body"])["detail"]["sessionId"] == detail["sessionId"]
    assert back["MessageAttributes"]["redriveCount"]["StringValue"] == "1"
    [record] = list(db.dead_letters.find())
    assert record["action"] == "redriven"


def test_past_the_limit_it_is_parked_then_replay_lets_billing_publish_its_events(stage, db, capsys):
    detail = session()
    invoice_id = _bill_with_the_bus_down(db, stage.settings, detail)
    limit = stage.settings.redrive_limit
    put_dead(stage, bus_body(detail), failureClass="permanent", failureReason="PublishError: bus unreachable",
             sourceQueue="billing", redriveCount=str(limit))
    run_reconciler(stage)
    capsys.readouterr()
    assert stage.captured() == [] and stage.receive_all("billing") == []
    [record] = list(db.dead_letters.find())
    assert (record["action"], record["parked"], record["status"]) == ("billed-events-pending", True, "done")

    # On-call fixes the bus, then replays: the check lets it through because the events are not published.
    capture = _capture(stage, ["INVOICE_GENERATED", "PAYMENT_COMPLETED", "BILLING_FAILED"])
    [summary, row] = cli(capsys, "replay", "--queue", "billing-dlq", "--execute", "--operator", "oncall-1")
    assert (summary["replayed"], row["verdict"]) == (1, "replay")
    [sent] = stage.receive_all("billing")

    from chalicelib.billing.entry import handle_sessions

    event = lambda_event([sent])
    event["Records"][0]["eventSourceARN"] = event["Records"][0]["eventSourceARN"].replace("-dlq", "")
    assert handle_sessions(event, Ctx()) == {"batchItemFailures": []}
    published = capture()
    assert sorted(t for t, _ in published) == ["INVOICE_GENERATED", "PAYMENT_COMPLETED"]
    assert all(d["invoiceId"] == invoice_id for _, d in published)
    assert db.invoices.find_one({"_id": invoice_id})["eventsPublished"] is True
    assert db.ledger.count_documents({"kind": {"$ne": "OPENING"}}) == 1  # debited once, not twice


def test_a_dead_letter_whose_invoice_events_are_published_is_skipped_by_replay(stage, db, capsys):
    detail = session()
    put_dead(stage, bus_body(detail), failureClass="permanent", failureReason="late duplicate")
    db.invoices.insert_one({"_id": "inv-9", "sessionId": detail["sessionId"], "eventsPublished": True})
    run_reconciler(stage)
    capsys.readouterr()
    assert stage.captured() == []
    assert [r["action"] for r in db.dead_letters.find()] == ["already-billed"]
    put_dead(stage, bus_body(detail), failureClass="permanent", failureReason="late duplicate")
    [summary, row] = cli(capsys, "replay", "--queue", "billing-dlq", "--execute", "--operator", "oncall-1")
    assert (summary["replayed"], row["verdict"]) == (0, "already-applied")
    assert stage.receive_all("billing") == []


def test_billings_published_query_reports_what_billing_stored(stage, db):
    """The DLQ's only view of billing: ``invoice_state`` over the invoice billing really wrote."""
    from chalicelib.billing.queries import InvoiceState, invoice_state
    from chalicelib.billing.repository import BillingRepository

    detail = session()
    assert invoice_state(db, detail["sessionId"]) is None
    invoice_id = _bill_with_the_bus_down(db, stage.settings, detail)
    assert invoice_state(db, detail["sessionId"]) == InvoiceState(invoice_id=invoice_id, user_id=detail["userId"],
                                                                  status="PAID", events_published=False)
    BillingRepository(db).mark_published([invoice_id])
    assert invoice_state(db, detail["sessionId"]).events_published is True
