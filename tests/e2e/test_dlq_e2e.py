"""Dead letters through the running local stack: where a poison message ends, what on-call sees, safe replay."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import boto3
from pymongo import MongoClient

from chalicelib.contracts.events import BILLING_FAILED, derived_event_id

USER = "0b1732fa-631a-4952-b6d6-2d586ed9dbf8"


def session(**over) -> dict:
    return {"eventType": "SESSION_ENDED", "sessionId": str(uuid.uuid4()), "userId": USER,
            "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f", "energyKwh": 22.4, "durationMinutes": 58,
            # minutes ago: billing refuses a session older than SESSION_MAX_AGE_DAYS
            "endedAt": (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"), **over}


def audit(local_stack, *extra: str) -> list[dict]:
    done = local_stack.cli("dlq", "audit", "--queue", "billing-dlq", *extra)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip() not in ("", "[]")]  # [] = none


def decision_for(local_stack, session_id: str) -> dict | None:
    for record in audit(local_stack):
        if record.get("kind") == "decision" and record.get("businessKey", {}).get("sessionId") == session_id \
                and record.get("status") == "done":
            return record
    return None


def test_poison_session_ends_in_the_dlq_and_billing_failed_is_published_and_audited(local_stack):
    poison = session(energyKwh=-3)
    status, _ = local_stack.put_event(poison)
    assert status == 202
    record = local_stack.wait_for(lambda: decision_for(local_stack, poison["sessionId"]), 60)
    assert record["action"] == "billing_failed" and record["failureClass"] == "permanent"
    assert record["sourceQueue"] == "billing" and record["eventType"] == "SESSION_ENDED"
    assert record["result"]["published"] == BILLING_FAILED
    assert record["result"]["eventId"] == derived_event_id(BILLING_FAILED, f"{poison['sessionId']}:p0")
    assert "energyKwh" in record["reason"]
    # It went to the DLQ directly (a permanent verdict), not after five receives.
    lines = [json.loads(line) for line in local_stack.logs().splitlines() if line.startswith('{"ts"')]
    billing = [entry for entry in lines if entry.get("pump") == "billing" and entry.get("outcome") == "dead-lettered"]
    assert any(entry.get("receiveCount") == 1 for entry in billing)
    assert "driver@" not in local_stack.logs()


def test_replay_after_a_fix_bills_once_and_never_twice(local_stack):
    env = local_stack.env
    # The user must exist (have a wallet) by the time the replay is billed: an unknown user is refused.
    assert local_stack.put_event({"eventType": "USER_REGISTERED", "userId": USER,
                                  "registeredAt": "2026-02-20T10:00:00Z"})[0] == 202
    detail = session()
    body = json.dumps({"version": "0", "id": str(uuid.uuid4()), "detail-type": "SESSION_ENDED",
                       "source": "jucr.session", "time": "2026-02-21T14:31:01Z", "detail": detail})
    sqs = boto3.client("sqs", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
                       aws_access_key_id="local", aws_secret_access_key="local")
    dlq_url = sqs.get_queue_url(QueueName=f"{env['JUCR_APP_NAME']}-{env['JUCR_STAGE']}-billing-dlq")["QueueUrl"]
    # As the batch runner sends a permanent failure (e.g. a tariff misconfiguration, since fixed).
    sqs.send_message(QueueUrl=dlq_url, MessageBody=body, MessageAttributes={
        "failureClass": {"DataType": "String", "StringValue": "permanent"},
        "failureReason": {"DataType": "String", "StringValue": "tariff misconfigured"},
        "sourceQueue": {"DataType": "String", "StringValue": "billing"}})
    parked = local_stack.wait_for(lambda: decision_for(local_stack, detail["sessionId"]), 60)
    assert parked["action"] == "billing_failed"

    dry = local_stack.cli("dlq", "replay", "--queue", "billing-dlq", "--max", "50")
    rows = [json.loads(line) for line in dry.stdout.splitlines()]
    assert rows[0]["dryRun"] is True
    [mine] = [r for r in rows[1:] if r["businessKey"].get("sessionId") == detail["sessionId"]]
    assert mine["verdict"] == "replay"

    invoices = MongoClient(env["MONGODB_URI"], serverSelectionTimeoutMS=5000)[env["MONGODB_DB"]]["invoices"]
    assert invoices.count_documents({"sessionId": detail["sessionId"]}) == 0  # the dry run changed nothing

    done = local_stack.cli("dlq", "replay", "--queue", "billing-dlq", "--execute", "--yes", "--max", "50",
                           "--operator", "e2e-oncall")
    assert done.returncode == 0, done.stderr
    local_stack.wait_for(lambda: invoices.count_documents({"sessionId": detail["sessionId"]}) == 1, 60)

    again = local_stack.cli("dlq", "replay", "--queue", "billing-dlq", "--execute", "--yes", "--max", "50")
    rows = [json.loads(line) for line in again.stdout.splitlines()]
    assert all(r["businessKey"].get("sessionId") != detail["sessionId"] or r["verdict"] != "replay" for r in rows[1:])
    replays = [r for r in audit(local_stack, "--action", "replay") if r.get("businessKey", {}).get("sessionId")
               == detail["sessionId"]]
    assert [(r["operator"], r["result"]["outcome"]) for r in replays] == [("e2e-oncall", "replayed")]
    assert invoices.count_documents({"sessionId": detail["sessionId"]}) == 1
