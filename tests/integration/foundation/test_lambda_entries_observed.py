"""app.py's handlers as Lambda calls them: the EMF they print and the Lambda context on their log records."""

from __future__ import annotations

import io
import json
import uuid

import pytest

from chalicelib.contracts.errors import Unauthorized, ValidationError
from chalicelib.observability import logger, metrics
from devstack.lambda_context import LocalLambdaContext
from devstack.pump import lambda_record

REGISTER = {"email": "emf@example.com", "name": "Emma Metric", "password": "correct horse battery",
            "vehicle": {"brand": "Kia", "model": "EV6", "batteryCapacity": 77.4}}


@pytest.fixture
def app(monkeypatch):
    """The app module, in a process Powertools takes for fresh: the next invocation is a cold start."""
    import aws_lambda_powertools.logging.logger as powertools_logger
    from aws_lambda_powertools.metrics.provider import cold_start

    import app as module

    monkeypatch.setattr(powertools_logger, "is_cold_start", True)
    monkeypatch.setattr(cold_start, "is_cold_start", True)
    metrics.clear_metrics()
    return module


@pytest.fixture
def log(monkeypatch) -> io.StringIO:
    stream = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", stream)
    return stream


def records(log: io.StringIO, message: str) -> list[dict]:
    return [r for r in map(json.loads, log.getvalue().splitlines()) if r["message"] == message]


def emf(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def resolver_event(parent: str, field: str, arguments: dict | None = None, caller: dict | None = None) -> dict:
    return {"arguments": arguments or {}, "identity": {"resolverContext": caller} if caller else None,
            "source": None, "request": {"headers": {}}, "prev": None, "stash": {},
            "info": {"fieldName": field, "parentTypeName": parent, "variables": {}, "selectionSetList": []}}


def test_auth_resolver_logs_with_its_lambda_context_and_publishes_its_cold_start(aws, app, log, capsys):
    context = LocalLambdaContext("auth_resolver")
    payload = app.auth_resolver(resolver_event("Mutation", "register", {"input": REGISTER}), context)
    (record,) = records(log, "user registered")
    assert record["userId"] == payload["user"]["id"]
    assert (record["function_request_id"], record["function_name"], record["cold_start"]) == (
        context.aws_request_id, "auth_resolver", True)
    (blob,) = emf(capsys.readouterr().out)
    (declared,) = blob["_aws"]["CloudWatchMetrics"]
    assert declared["Namespace"] == "JUCR" and declared["Metrics"] == [{"Name": "ColdStart", "Unit": "Count"}]
    assert (blob["ColdStart"], blob["function_name"], blob["service"]) == ([1.0], "auth_resolver", "jucr")


def test_resolver_errors_reach_appsync_with_their_public_type_through_the_wrapper(settings, app):
    with pytest.raises(Unauthorized):
        app.billing_resolver(resolver_event("Query", "wallet"), LocalLambdaContext("billing_resolver"))
    with pytest.raises(ValidationError, match="billing resolver does not serve"):
        app.billing_resolver(resolver_event("Query", "me", caller={"userId": "u"}),
                             LocalLambdaContext("billing_resolver"))
    with pytest.raises(ValidationError) as unknown:
        app.stations_resolver(resolver_event("Query", "station", {"ocmId": 1, "radius": 2}, {"userId": "u"}),
                              LocalLambdaContext("stations_resolver"))
    assert unknown.value.details == {"arguments._unknown": "Unknown field."}


def test_wallet_opener_metrics_go_out_once_with_the_queue_dimension(aws, app, log, capsys):
    user_id = str(uuid.uuid4())
    body = json.dumps({"version": "0", "id": str(uuid.uuid4()), "detail-type": "USER_REGISTERED",
                       "source": "jucr.auth", "account": "123456789012", "time": "2026-02-21T14:31:01Z",
                       "region": "eu-central-1", "resources": [],
                       "detail": {"eventType": "USER_REGISTERED", "userId": user_id,
                                  "registeredAt": "2026-02-20T10:00:00Z", "eventId": str(uuid.uuid4())}})
    sqs, url = aws.client("sqs"), aws.queue_url("wallets")
    sqs.send_message(QueueUrl=url, MessageBody=body)
    (message,) = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    context = LocalLambdaContext("wallet_opener")

    result = app.wallet_opener({"Records": [lambda_record(message, arn, "eu-central-1")]}, context)

    assert result == {"batchItemFailures": []}
    blobs = [b for b in emf(capsys.readouterr().out) if "ColdStart" not in b]
    assert len(blobs) == 1, blobs  # the batch runner's flush; the wrapper's found nothing left
    (declared,) = blobs[0]["_aws"]["CloudWatchMetrics"]
    assert declared["Namespace"] == "JUCR" and declared["Dimensions"] == [["queue", "service"]]
    assert blobs[0]["queue"] == "wallets" and blobs[0]["RecordsSucceeded"] == [1.0]
    (record,) = records(log, "wallet opened")
    assert record["function_request_id"] == context.aws_request_id and record["userId"] == user_id
