"""Reconciler and replay through their entry points: moto SQS/EventBridge, the embedded store.

A capture queue behind a bus rule for BILLING_FAILED shows what the session
service would receive.
"""

from __future__ import annotations

import io
import json

import pytest

from chalicelib.__main__ import main as cli_main
from chalicelib.dlq.entry import reconcile
from tests.integration.dlq.flows import Ctx, bus_body, cli, lambda_event, put_dead, run_reconciler, session


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
    limit = stage.settings.queue.redrive_limit
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


def test_the_reconciler_lambda_trusts_the_configured_session_source(stage, monkeypatch):
    from chalicelib import bootstrap
    from chalicelib.dlq.entry import build_reconciler

    monkeypatch.setenv("SESSION_EVENT_SOURCE", "acme.sessions")
    bootstrap.reset()
    assert build_reconciler().trusted_session_source == "acme.sessions"
    put_dead(stage, bus_body(session()), failureClass="permanent", errorType="SessionImplausible")
    assert run_reconciler(stage)[0] == {"batchItemFailures": []}
    assert stage.captured() == [], "a jucr.session letter is not the configured publisher's: parked"
