"""The DLQ flow tests' stage: moto SQS/EventBridge and the store, with a capture queue for BILLING_FAILED."""

from __future__ import annotations

import json

import pytest

from chalicelib import bootstrap
from devstack.pump import drain_queue


@pytest.fixture
def stage(aws, db, monkeypatch):
    """moto + store, re-drives without delay, and a capture queue for BILLING_FAILED."""
    monkeypatch.setenv("DLQ_REDRIVE_DELAY_SECONDS", "0")
    monkeypatch.setenv("JUCR_NO_LOCAL_STACK", "1")
    bootstrap.reset()
    sqs, events = aws.client("sqs"), aws.client("events")
    capture_url = sqs.create_queue(QueueName="capture")["QueueUrl"]
    capture_arn = sqs.get_queue_attributes(QueueUrl=capture_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="capture", EventBusName=aws.settings.core.event_bus_name,
                    EventPattern=json.dumps({"detail-type": ["BILLING_FAILED"]}))
    events.put_targets(Rule="capture", EventBusName=aws.settings.core.event_bus_name,
                       Targets=[{"Id": "capture", "Arn": capture_arn}])
    aws.captured = lambda: [json.loads(m["Body"])["detail"] for m in drain_queue(sqs, capture_url)]
    return aws
