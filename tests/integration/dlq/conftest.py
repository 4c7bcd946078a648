"""The DLQ flow tests' stage: moto SQS/EventBridge and the store, with a capture queue for BILLING_FAILED."""

from __future__ import annotations

import pytest

from chalicelib import bootstrap


@pytest.fixture
def stage(aws, db, monkeypatch):
    """moto + store, re-drives without delay, and a capture queue for BILLING_FAILED."""
    monkeypatch.setenv("DLQ_REDRIVE_DELAY_SECONDS", "0")
    monkeypatch.setenv("JUCR_NO_LOCAL_STACK", "1")
    bootstrap.reset()
    aws.captured = aws.capture("capture", {"detail-type": ["BILLING_FAILED"]})
    return aws
