"""PII in logs: addresses registration accepts, and URI passwords, never reach a log line.

Each case goes through the app's real Powertools logger and formatter, and the test
reads what was written to stdout, so a gap anywhere on the way (message, extra
fields, dict keys, exception text, stack trace) shows up here.
"""

from __future__ import annotations

import io
import json

import pytest
from pymongo.errors import DuplicateKeyError

from chalicelib.observability import logger

ADDRESSES = ["victim@localhost", "user@[10.0.0.1]", "o'brien@example.com", "ada@example.com"]
URI = "mongodb://user:p@ss@db.example.net/jucr"
URI_SECRETS = ["p@ss", "ss@db", "user:p", "user:"]


@pytest.fixture
def written_to():
    """What the app's logger writes, read from its own handler (pointed at a buffer for the test)."""
    buffer = io.StringIO()
    handler = logger.registered_handler
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


def _written(buffer: io.StringIO) -> str:
    out = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    lines = out.splitlines()
    assert lines, "the logger wrote nothing"
    for line in lines:
        json.loads(line)  # still one JSON object per line after masking
    return out


def _local_parts(address: str) -> list[str]:
    local, _, domain = address.partition("@")
    return [address, local + "@", "@" + domain]


@pytest.mark.parametrize("address", ADDRESSES)
def test_email_shaped_text_is_masked_in_the_message(written_to, address):
    logger.info(f"registered {address} just now")
    text = _written(written_to)
    for part in _local_parts(address):
        assert part not in text
    assert json.loads(text)["message"] == "registered [REDACTED] just now"  # the whole address, not a tail


@pytest.mark.parametrize("address", ADDRESSES)
def test_email_shaped_text_is_masked_in_extra_values_and_keys(written_to, address):
    logger.warning("lookup", extra={"detail": f"no user {address}", "byAddress": {address: 1},
                                    "attempts": [address]})
    text = _written(written_to)
    for part in _local_parts(address):
        assert part not in text


def test_duplicate_key_text_logged_with_exception_is_masked(written_to):
    message = ('E11000 duplicate key error collection: jucr.users index: email_1 '
               'dup key: { email: "victim@localhost" }')
    try:
        raise DuplicateKeyError(message, 11000, {"keyValue": {"email": "victim@localhost"}})
    except DuplicateKeyError:
        logger.exception("registration failed")
    text = _written(written_to)
    assert "DuplicateKeyError" in text  # the exception is still reported
    assert "victim" not in text and "localhost" not in text


def test_exception_object_passed_as_extra_is_masked(written_to):
    logger.error("store failed", extra={"error": ValueError("cannot reach user@[10.0.0.1]")})
    text = _written(written_to)
    assert "10.0.0.1" not in text and "user@" not in text


def test_uri_password_holding_at_sign_is_masked_everywhere(written_to):
    try:
        raise ConnectionError(f"cannot connect to {URI}")
    except ConnectionError:
        logger.exception(f"startup with {URI}", extra={"target": URI})
    text = _written(written_to)
    for secret in URI_SECRETS:
        assert secret not in text
    assert "mongodb://[REDACTED]@db.example.net/jucr" in text  # the host stays readable


@pytest.mark.parametrize("uri", ["postgres://admin:s3cr3t@10.0.0.5:5432/x", "https://bot:tok@en@api.example.com/"])
def test_credentials_of_any_scheme_are_masked(written_to, uri):
    logger.info("calling", extra={"url": uri})
    text = _written(written_to)
    assert "s3cr3t" not in text and "tok@en" not in text and "admin:" not in text and "bot:" not in text
