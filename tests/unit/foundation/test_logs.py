import io
import json
import logging
import uuid

from aws_lambda_powertools import Logger

from chalicelib.observability.logs import PiiSafeFormatter, scrub


def _capture():
    stream = io.StringIO()
    # a fresh service name per capture: Powertools shares handlers between loggers of one name
    log = Logger(service=f"t{uuid.uuid4().hex[:8]}", logger_formatter=PiiSafeFormatter(),
                 logger_handler=logging.StreamHandler(stream))
    return log, stream


def test_pii_keys_are_dropped_even_when_passed_by_mistake():
    log, stream = _capture()
    log.info("registered", extra={"userId": "u-1", "email": "ada@example.com", "password": "hunter2hunter2",
                                  "vehicle": {"brand": "VW"}, "nested": {"accessToken": "abc", "ok": 1}})
    record = json.loads(stream.getvalue())
    assert record["userId"] == "u-1"
    for key in ("email", "password", "vehicle"):
        assert key not in record
    assert record["nested"] == {"ok": 1}


def test_pii_inside_free_text_is_masked():
    log, stream = _capture()
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    log.info(f"login by ada@example.com with {token} on mongodb://user:secret@db.example.com/x")
    text = stream.getvalue()
    assert "ada@example.com" not in text
    assert token not in text
    assert "secret@" not in text


def test_scrub_leaves_structured_metadata_alone():
    assert scrub({"sessionId": "s", "count": 3, "items": [{"name": "x", "id": 1}]}) == {
        "sessionId": "s", "count": 3, "items": [{"id": 1}]}


def test_keys_that_merely_contain_pii_words_are_dropped_but_metadata_stays():
    cleaned = scrub({"userEmail": "a@b.c", "displayName": "Ada", "sessionToken": "t", "secretAccessKey": "k",
                     "function_name": "billing_consumer", "tokenVersion": 2, "queueName": "billing", "count": 1})
    assert cleaned == {"function_name": "billing_consumer", "tokenVersion": 2, "queueName": "billing", "count": 1}


def test_lambda_context_keys_survive_the_filter():
    log, stream = _capture()
    log.info("handled", extra={"sessionId": "s-1"})
    record = json.loads(stream.getvalue())
    assert {"level", "location", "message", "timestamp", "service", "sessionId"} <= set(record)
