"""What the security tests share: moto in process with a Secrets Manager client (the deploy step's view)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws


@pytest.fixture
def moto(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "eu-central-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="eu-central-1")
