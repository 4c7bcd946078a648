"""A dead letter of a session billing already invoiced: re-driven or parked, never BILLING_FAILED; replay
lets billing publish what it stored. Through the entry points, on moto and the embedded store."""

from __future__ import annotations

import json

import pytest

from chalicelib import bootstrap
from devstack.pump import drain_queue
from tests.integration.dlq.flows import Ctx, bus_body, cli, lambda_event, put_dead, run_reconciler, session


def _bill_with_the_bus_down(db, settings, detail: dict) -> str:
    """Billing stores the invoice and debits, then cannot publish: what a long bus outage leaves behind."""
    from chalicelib.billing.repository import BillingRepository
    from chalicelib.billing.service import BillingDeps, BillingPolicy, bill_session, invoice_id_for, open_wallet
    from chalicelib.contracts.events import USER_REGISTERED, parse_event
    from chalicelib.events.publisher import PublishError, RecordingPublisher

    deps = BillingDeps(repo=BillingRepository(db), publisher=RecordingPublisher(fail_next=1),
                       clock=bootstrap.utc_now, policy=BillingPolicy.from_settings(settings.billing))
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
    events.put_rule(Name="capture-billing", EventBusName=stage.settings.core.event_bus_name,
                    EventPattern=json.dumps({"detail-type": detail_types}))
    events.put_targets(Rule="capture-billing", EventBusName=stage.settings.core.event_bus_name,
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
    limit = stage.settings.queue.redrive_limit
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
