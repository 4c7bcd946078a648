"""Alarms against moto: every alarm exists, notifies the topic, and a second run changes nothing."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from appsync.alarms import delete_alarms, desired_alarms, ensure_alarms, schedule_seconds, topic_name
from appsync.infra import Changes

RUNBOOK = Path(__file__).resolve().parents[3] / "docs" / "runbook.md"


def _alarms(aws) -> dict[str, dict]:
    response = aws.client("cloudwatch").describe_alarms(AlarmNamePrefix="jucr-test-", MaxRecords=100)
    return {a["AlarmName"]: a for a in response["MetricAlarms"]}


def test_alarms_exist_notify_the_topic_and_are_idempotent(aws):
    first = ensure_alarms(aws.client, aws.settings, Changes())
    assert first.changed
    topics = [t["TopicArn"] for t in aws.client("sns").list_topics()["Topics"]]
    [topic] = [t for t in topics if t.endswith(":" + topic_name(aws.settings))]
    alarms = _alarms(aws)
    for dlq in ("billing-dlq", "wallets-dlq", "ocm-sync-dlq"):
        depth = alarms[f"jucr-test-{dlq}-depth"]
        assert depth["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert depth["Dimensions"] == [{"Name": "QueueName", "Value": f"jucr-test-{dlq}"}]
        age = alarms[f"jucr-test-{dlq}-oldest-age"]
        assert age["Threshold"] == float(aws.settings.alarm.dlq_age_alarm_seconds)
    assert alarms["jucr-test-billing-failed"]["MetricName"] == "BillingFailed"
    assert alarms["jucr-test-billing-failed"]["Dimensions"] == [{"Name": "service", "Value": "jucr"},
                                                                {"Name": "queue", "Value": "billing-dlq"}]
    assert "jucr-test-wallets-dlq-parked" in alarms
    rate = alarms["jucr-test-billing_consumer-error-rate"]
    assert {m["Id"] for m in rate["Metrics"]} == {"rate", "errors", "invocations"}
    stalled = alarms["jucr-test-ocm-sync-stalled"]
    assert (stalled["Period"], stalled["EvaluationPeriods"], stalled["TreatMissingData"]) == (21600, 2, "breaching")
    latency = alarms["jucr-test-billing-latency-p99"]
    assert latency["ExtendedStatistic"] == "p99"
    assert latency["Threshold"] == float(aws.settings.alarm.billing_latency_slo_ms)
    held = alarms["jucr-test-ocm-sweep-removal-held"]
    assert (held["MetricName"], held["Dimensions"]) == ("OcmSweepRemovalHeld", [{"Name": "service", "Value": "jucr"}])
    assert all(a["AlarmActions"] == [topic] for a in alarms.values())

    second = ensure_alarms(aws.client, aws.settings, Changes())
    assert not second.changed, [line for line in second.lines if line[0] != "unchanged"]
    assert len(second.lines) == len(alarms) + 1  # + the topic


def test_a_changed_threshold_is_updated_and_schedule_off_removes_the_sync_alarm(aws):
    ensure_alarms(aws.client, aws.settings, Changes())
    stage = aws.settings
    changed = dataclasses.replace(stage, alarm=dataclasses.replace(stage.alarm, dlq_age_alarm_seconds=600),
                                  schedule=dataclasses.replace(stage.schedule, ocm_sync_schedule="off"))
    changes = ensure_alarms(aws.client, changed, Changes())
    updated = {name for action, _, name in changes.lines if action == "updated"}
    assert updated == {f"jucr-test-{q}-oldest-age" for q in ("billing-dlq", "wallets-dlq", "ocm-sync-dlq")}
    assert "jucr-test-ocm-sync-stalled" not in _alarms(aws)
    delete_alarms(aws.client, changed, Changes())
    assert _alarms(aws) == {}


def test_schedule_intervals():
    assert schedule_seconds("rate(6 hours)") == 21600
    assert schedule_seconds("rate(1 day)") == 86400
    assert schedule_seconds("rate(15 minutes)") == 900
    assert schedule_seconds("cron(0 * * * ? *)") == 86400
    assert schedule_seconds("off") is None


def test_every_alarm_points_at_a_runbook_section_that_exists(settings):
    """On call follows the link in the alarm: the section must be there, under that name."""
    headings = [line for line in RUNBOOK.read_text().splitlines() if line.startswith("## ")]
    named = {token for line in headings for token in re.findall(r"[a-z0-9_-]+", line)}
    for alarm in desired_alarms(settings, "arn:aws:sns:eu-central-1:000000000000:t"):
        [anchor] = re.findall(r"docs/runbook\.md#([a-z0-9_-]+)", alarm["AlarmDescription"])
        assert anchor in named, f"{alarm['AlarmName']} points at a missing runbook section #{anchor}"
