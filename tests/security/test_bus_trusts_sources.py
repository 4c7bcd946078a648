"""The bus trusts sources, not names: only the Session Service's source can get a session billed.

On moto with the resources the deploy step makes (``appsync/infra.py``): the rules route
by source (a forged SESSION_ENDED never reaches the billing queue), the consumers refuse a
forged source that reaches a queue some other way (dead-lettered as permanent, audited,
never billed), the Session Service's source is the ``SESSION_EVENT_SOURCE`` setting, each
publishing role may put only its own source, and the bus carries a policy.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from appsync import policies
from appsync.infra import Changes, Infra
from chalicelib import bootstrap
from chalicelib.billing import entry
from chalicelib.config import ConfigError, CoreSettings, load_section
from chalicelib.dlq.entry import reconcile
from chalicelib.sections import load_stage_settings

USER = "0b1732fa-631a-4952-b6d6-2d586ed9dbf8"
# Recent: billing refuses sessions older than SESSION_MAX_AGE_DAYS whatever their source.
ENDED_AT = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
SEED = {"eventType": "SESSION_ENDED", "sessionId": "6fe27f6e-ff2d-4dda-9f86-3de70e1a4bbf", "userId": USER,
        "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f", "energyKwh": 22.4, "durationMinutes": 58,
        "endedAt": ENDED_AT}


def _put(aws, source: str, detail_type: str, detail: dict) -> None:
    answer = aws.client("events").put_events(Entries=[{
        "EventBusName": aws.settings.core.event_bus_name, "Source": source, "DetailType": detail_type,
        "Detail": json.dumps(detail)}])
    assert answer["FailedEntryCount"] == 0


def _body(source: str, detail: dict) -> str:
    return json.dumps({"version": "0", "id": str(uuid.uuid4()), "detail-type": detail["eventType"], "source": source,
                       "time": ENDED_AT, "detail": detail})


def _lambda_event(aws, short: str, bodies: list[str] = ()) -> dict:
    """What the queue holds (after sending ``bodies`` to it directly), as Lambda hands it over."""
    for body in bodies:
        aws.client("sqs").send_message(QueueUrl=aws.queue_url(short), MessageBody=body)
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "eventSource": "aws:sqs",
        "messageAttributes": {k: {"stringValue": v["StringValue"], "dataType": v["DataType"]}
                              for k, v in (m.get("MessageAttributes") or {}).items()},
    } for m in aws.receive_all(short)]}


def _open_wallet(aws, user_id: str = USER) -> None:
    registered = {"eventType": "USER_REGISTERED", "userId": user_id, "registeredAt": "2026-02-20T10:00:00Z"}
    assert entry.handle_registrations(_lambda_event(aws, "wallets", [_body("jucr.auth", registered)]), None) == {
        "batchItemFailures": []}


def test_a_forged_source_never_reaches_the_billing_queue(aws):
    _put(aws, "attacker.anything", "SESSION_ENDED", SEED)
    _put(aws, "jucr.auth", "SESSION_ENDED", {**SEED, "sessionId": "11111111-1111-4111-8111-111111111111"})
    _put(aws, "jucr.session", "SESSION_ENDED", {**SEED, "sessionId": "22222222-2222-4222-8222-222222222222"})
    queued = [json.loads(m["Body"]) for m in aws.receive_all("billing")]
    assert [(e["source"], e["detail"]["sessionId"]) for e in queued] == \
        [("jucr.session", "22222222-2222-4222-8222-222222222222")]


def test_a_registration_counts_only_from_auth(aws):
    user = {"userId": SEED["userId"], "registeredAt": "2026-02-20T10:00:00Z"}
    _put(aws, "jucr.session", "USER_REGISTERED", user)
    _put(aws, "jucr.auth", "USER_REGISTERED", user)
    assert [json.loads(m["Body"])["source"] for m in aws.receive_all("wallets")] == ["jucr.auth"]


def test_a_forged_source_on_the_billing_queue_is_dead_lettered_audited_and_never_billed(aws, db):
    _open_wallet(aws)
    forged = _body("attacker.anything", SEED)  # sent to the queue directly: no rule stood in the way
    assert entry.handle_sessions(_lambda_event(aws, "billing", [forged]), None) == {"batchItemFailures": []}
    assert db.invoices.count_documents({}) == 0
    [letter] = aws.receive_all("billing-dlq")
    attributes = {k: v["StringValue"] for k, v in letter["MessageAttributes"].items()}
    assert (attributes["failureClass"], attributes["errorType"]) == ("permanent", "UntrustedSource")
    assert attributes["failureReason"].startswith("source:") and "attacker" not in attributes["failureReason"]

    aws.client("sqs").send_message(QueueUrl=aws.queue_url("billing-dlq"), MessageBody=letter["Body"],
                                   MessageAttributes=letter["MessageAttributes"])
    assert reconcile("billing-dlq", _lambda_event(aws, "billing-dlq"), None) == {"batchItemFailures": []}
    [audit] = list(db.dead_letters.find())
    assert (audit["failureClass"], audit["status"], audit["eventType"]) == ("permanent", "done", "SESSION_ENDED")
    # parked, not compensated: a BILLING_FAILED would reach the user the forger named
    assert (audit["action"], audit["parked"]) == ("parked", True)
    assert audit["reason"].startswith("source:") and audit["businessKey"]["sessionId"] == SEED["sessionId"]
    assert aws.receive_all("billing") == []  # a permanent verdict is never re-driven
    assert db.invoices.count_documents({}) == 0


def test_the_wallets_consumer_refuses_a_registration_from_another_source(aws, db):
    registered = {"eventType": "USER_REGISTERED", "userId": USER, "registeredAt": "2026-02-20T10:00:00Z"}
    event = _lambda_event(aws, "wallets", [_body("jucr.session", registered)])
    assert entry.handle_registrations(event, None) == {"batchItemFailures": []}
    assert db.wallets.count_documents({}) == 0
    [letter] = aws.receive_all("wallets-dlq")
    assert letter["MessageAttributes"]["failureReason"]["StringValue"].startswith("source:")


def test_the_session_service_source_is_a_setting(aws, db, monkeypatch):
    monkeypatch.setenv("SESSION_EVENT_SOURCE", "acme.sessions")
    bootstrap.reset()
    changes = Infra(bootstrap.aws_client, load_stage_settings(), Changes()).apply_messaging()
    assert ("updated", "rule", "jucr-test-to-billing") in changes.lines
    _open_wallet(aws)
    _put(aws, "jucr.session", "SESSION_ENDED", {**SEED, "sessionId": "11111111-1111-4111-8111-111111111111"})
    _put(aws, "acme.sessions", "SESSION_ENDED", SEED)
    event = _lambda_event(aws, "billing", [_body("jucr.session", {**SEED, "sessionId": str(uuid.uuid4())})])
    assert sorted(json.loads(r["body"])["source"] for r in event["Records"]) == ["acme.sessions", "jucr.session"]
    assert entry.handle_sessions(event, None) == {"batchItemFailures": []}
    assert [i["sessionId"] for i in db.invoices.find()] == [SEED["sessionId"]]
    [letter] = aws.receive_all("billing-dlq")  # the old default, sent to the queue directly, is refused
    assert letter["MessageAttributes"]["failureReason"]["StringValue"].startswith("source:")


@pytest.mark.parametrize("value", ["", "aws.sessions", "acme sessions", "x" * 257, "acme:sessions"])
def test_an_invalid_session_source_stops_start_up_naming_the_setting(value):
    with pytest.raises(ConfigError, match="SESSION_EVENT_SOURCE"):
        load_section(CoreSettings, {"SESSION_EVENT_SOURCE": value})
    assert load_section(CoreSettings, {"SESSION_EVENT_SOURCE": "acme/sessions-v2_x"}).session_event_source == \
        "acme/sessions-v2_x"


# What each function really publishes (grep OutgoingEvent): the role may put those sources only.
PUBLISHED = {"auth_resolver": ["jucr.auth"], "billing_consumer": ["jucr.billing"],
             "reconcile_billing_dlq": ["jucr.dlq"], "ocm_sync": ["jucr.ocm"], "ocm_full_sweep": ["jucr.ocm"]}


@pytest.mark.parametrize("stage", policies.POLICY_STAGES)
def test_each_publishing_role_may_put_only_its_own_source(stage):
    settings = policies.stage_settings(stage)
    for function in policies.FUNCTIONS:
        document = policies.policy_document(settings, function)
        puts = [s for s in document["Statement"] if "events:PutEvents" in s["Action"]]
        if function not in PUBLISHED:
            assert puts == [], function  # publishes nothing, so may put nothing
            continue
        [put] = puts
        assert put["Condition"] == {"StringEquals": {"events:source": PUBLISHED[function]}}, function
        committed = json.loads((policies.CHALICE_DIR / policies.policy_file_name(stage, function)).read_text())
        assert put in committed["Statement"], function


def test_the_deploy_step_gives_the_bus_a_policy_of_this_account_and_known_sources(settings, monkeypatch):
    from moto import mock_aws

    from appsync import deploy

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("SESSION_EVENT_SOURCE", "acme.sessions")
    with mock_aws():
        lines: list[str] = []
        deploy.run("dev", only_infra=True, echo=lines.append)
        stage = deploy.settings_for_stage("dev")
        bus = deploy.boto_clients(stage)("events").describe_event_bus(Name=stage.core.event_bus_name)
        again: list[str] = []
        deploy.run("dev", only_infra=True, echo=again.append)
    assert any(line.split()[:3] == ["created", "bus", "policy"] for line in lines)
    assert any(line.split()[:3] == ["unchanged", "bus", "policy"] for line in again)
    account = bus["Arn"].split(":")[4]
    allow, deny = json.loads(bus["Policy"])["Statement"]
    known = ["acme.sessions", "jucr.auth", "jucr.billing", "jucr.dlq", "jucr.ocm"]
    assert (allow["Effect"], allow["Principal"], allow["Action"], allow["Resource"]) == (
        "Allow", {"AWS": f"arn:aws:iam::{account}:root"}, "events:PutEvents", bus["Arn"])
    assert allow["Condition"] == {"StringEquals": {"events:source": known}}
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "events:PutEvents")
    assert deny["Condition"] == {"StringNotEquals": {"events:source": known}}
