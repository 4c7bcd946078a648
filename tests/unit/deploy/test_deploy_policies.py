"""Least privilege: one policy file per function and stage, current, and no wildcard grants."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appsync import policies
from chalicelib.topology import QUEUES

CHALICE = Path(__file__).resolve().parents[3] / ".chalice"
CONFIG = json.loads((CHALICE / "config.json").read_text())
FILES = sorted(CHALICE.glob("policy-*.json"))


def test_policy_files_are_current():
    # Regenerate with: python -m appsync.policies
    assert policies.stale_files() == []


@pytest.mark.parametrize("stage", policies.POLICY_STAGES)
def test_every_function_of_the_stage_has_its_own_policy_file(stage):
    stage_cfg = CONFIG["stages"][stage]
    assert stage_cfg["autogen_policy"] is False
    for function in policies.FUNCTIONS:
        name = stage_cfg["lambda_functions"][function]["iam_policy_file"]
        assert name == policies.policy_file_name(stage, function)
        assert (CHALICE / name).exists()


def _as_list(value):
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_no_star_actions_or_resources(path):
    doc = json.loads(path.read_text())
    for statement in doc["Statement"]:
        actions = _as_list(statement["Action"])
        resources = _as_list(statement["Resource"])
        assert not any(a == "*" or a.endswith(":*") for a in actions), (path.name, statement)
        if actions == ["cloudwatch:PutMetricData"]:  # AWS only accepts Resource "*" here: require a namespace
            assert statement["Condition"]["StringEquals"]["cloudwatch:namespace"]
            continue
        for resource in resources:
            assert resource != "*", (path.name, statement)
            if resource.startswith("arn:aws:logs:"):
                assert "/aws/lambda/jucr-" in resource  # only the function's own log group
            else:
                assert ":jucr-" in resource or ":secret:jucr/" in resource or "/jucr-" in resource, resource


def test_stage_names_do_not_leak_across_stages():
    for path in FILES:
        stage = path.name.split("-")[1]
        other = "prod" if stage == "dev" else "dev"
        assert f"jucr-{other}" not in path.read_text(), path.name


def test_consumers_get_exactly_their_queue_and_its_dlq():
    settings = policies.stage_settings("dev")
    doc = policies.policy_document(settings, "billing_consumer")
    sqs = {s["Sid"]: s for s in doc["Statement"] if any(a.startswith("sqs:") for a in s["Action"])}
    assert sqs["ConsumeQueue"]["Resource"] == ["arn:aws:sqs:*:*:jucr-dev-billing"]
    # The batch runner sets the retry back-off on its own queue.
    assert "sqs:ChangeMessageVisibility" in sqs["ConsumeQueue"]["Action"]
    assert "sqs:SendMessage" not in sqs["ConsumeQueue"]["Action"]
    # ... and dead-letters a permanent failure itself (chalicelib/events/consumer.py).
    assert sqs["SendToQueue"]["Resource"] == ["arn:aws:sqs:*:*:jucr-dev-billing-dlq"]
    assert {"sqs:SendMessage", "sqs:GetQueueUrl"} <= set(sqs["SendToQueue"]["Action"])
    resolver = policies.policy_document(settings, "billing_resolver")
    assert {a for s in resolver["Statement"] for a in s["Action"]} <= {
        "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}


def _grants(doc, action):
    return {r for s in doc["Statement"] if action in s["Action"] for r in s["Resource"]}


@pytest.mark.parametrize("stage", policies.POLICY_STAGES)
def test_every_consumer_of_a_queue_with_a_dlq_may_send_to_that_dlq(stage):
    consumers = [spec for spec in QUEUES if spec.dlq is not None and spec.consumer is not None]
    assert {spec.consumer for spec in consumers} == {"billing_consumer", "wallet_opener"}
    for spec in consumers:
        settings = policies.stage_settings(stage, function=spec.consumer)
        doc = policies.policy_document(settings, spec.consumer)
        own, dlq = (f"arn:aws:sqs:*:*:{settings.core.queue_name(q)}" for q in (spec.short, spec.dlq))
        assert dlq in _grants(doc, "sqs:SendMessage"), spec.consumer
        assert dlq in _grants(doc, "sqs:GetQueueUrl"), spec.consumer
        assert own in _grants(doc, "sqs:ChangeMessageVisibility"), spec.consumer
        assert own not in _grants(doc, "sqs:SendMessage"), spec.consumer


def test_schedule_functions_may_send_to_their_failure_destination_only():
    settings = policies.stage_settings("prod")
    doc = policies.policy_document(settings, "ocm_sync")
    send = next(s for s in doc["Statement"] if s["Sid"] == "SendToQueue")
    assert send["Resource"] == ["arn:aws:sqs:*:*:jucr-prod-ocm-sync-dlq"]


def test_check_mode_reports_a_stale_file(tmp_path):
    (tmp_path / "config.json").write_text((CHALICE / "config.json").read_text())
    for path in FILES:
        (tmp_path / path.name).write_text(path.read_text())
    assert policies.stale_files(tmp_path) == []
    (tmp_path / "policy-dev-authorizer.json").write_text("{}")
    assert policies.stale_files(tmp_path) == ["policy-dev-authorizer.json"]
