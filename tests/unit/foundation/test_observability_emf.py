"""``observed``, the wrapper of every app.py handler: the EMF it prints and the context on its log records."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from chalice.app import SQSEvent

from chalicelib.observability import logger, metrics
from chalicelib.observability.handler import observed
from chalicelib.observability.metrics import MetricUnit
from devstack.lambda_context import LocalLambdaContext

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def cold(monkeypatch):
    """A fresh process as far as Powertools can tell: the next invocation is a cold start."""
    import aws_lambda_powertools.logging.logger as powertools_logger
    from aws_lambda_powertools.metrics.provider import cold_start

    monkeypatch.setattr(powertools_logger, "is_cold_start", True)
    monkeypatch.setattr(cold_start, "is_cold_start", True)
    metrics.clear_metrics()


@pytest.fixture
def records(monkeypatch) -> list[dict]:
    """The app logger's JSON records, as Lambda would read them from stdout."""
    stream = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", stream)

    class Records(list):
        def read(self) -> Records:
            self[:] = [json.loads(line) for line in stream.getvalue().splitlines()]
            return self

    return Records()


def emf_blobs(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def directive(blob: dict) -> dict:
    (only,) = blob["_aws"]["CloudWatchMetrics"]
    return only


def test_a_lambda_function_handler_flushes_its_metrics_and_logs_with_its_context(cold, records, capsys):
    @observed
    def billing_resolver(event, context):
        metrics.add_metric(name="InvoicesRead", unit=MetricUnit.Count, value=2)
        logger.info("invoices read", extra={"count": 2})
        return {"seen": event["n"], "context": context.function_name}

    context = LocalLambdaContext("billing_resolver")
    assert billing_resolver({"n": 1}, context) == {"seen": 1, "context": "billing_resolver"}
    blobs = emf_blobs(capsys.readouterr().out)
    counted = [b for b in blobs if "InvoicesRead" in b]
    assert len(counted) == 1 and counted[0]["InvoicesRead"] == [2.0] and counted[0]["service"] == "jucr"
    assert directive(counted[0])["Namespace"] == "JUCR" and directive(counted[0])["Dimensions"] == [["service"]]
    (cold_start,) = [b for b in blobs if "ColdStart" in b]
    assert directive(cold_start)["Namespace"] == "JUCR"
    assert (cold_start["function_name"], cold_start["service"]) == ("billing_resolver", "jucr")
    (record,) = records.read()
    assert record["message"] == "invoices read" and record["function_request_id"] == context.aws_request_id
    assert record["cold_start"] is True and record["function_name"] == "billing_resolver"

    warm = LocalLambdaContext("billing_resolver")
    billing_resolver({"n": 2}, warm)
    assert [b for b in emf_blobs(capsys.readouterr().out) if "ColdStart" in b] == []
    assert records.read()[-1]["cold_start"] is False and records[-1]["function_request_id"] == warm.aws_request_id


def test_an_sqs_handler_reads_the_context_from_the_event_and_the_queue_dimension_survives(cold, records, capsys):
    """The batch runner flushes with its ``queue`` dimension; the wrapper's own flush adds no second blob."""

    @observed
    def wallet_opener(event):
        metrics.add_dimension(name="queue", value="wallets")  # what events/consumer.py run_batch does
        metrics.add_metric(name="RecordsSucceeded", unit=MetricUnit.Count, value=1)
        logger.info("wallet opened")
        metrics.flush_metrics()
        return {"batchItemFailures": [], "records": len(event.to_dict()["Records"])}

    context = LocalLambdaContext("wallet_opener")
    assert wallet_opener(SQSEvent({"Records": []}, context)) == {"batchItemFailures": [], "records": 0}
    blobs = [b for b in emf_blobs(capsys.readouterr().out) if "ColdStart" not in b]
    assert len(blobs) == 1 and blobs[0]["RecordsSucceeded"] == [1.0] and blobs[0]["queue"] == "wallets"
    assert directive(blobs[0])["Dimensions"] == [["queue", "service"]]
    assert records.read()[0]["function_request_id"] == context.aws_request_id


def test_metrics_counted_before_a_handler_raised_are_still_flushed(cold, capsys):
    @observed
    def ocm_sync(event):
        metrics.add_metric(name="OcmSweepRemovalHeld", unit=MetricUnit.Count, value=1)
        raise RuntimeError("store down")

    class ScheduledEvent:  # Chalice's CloudWatchEvent as the handler sees it
        context = LocalLambdaContext("ocm_sync")

        def to_dict(self) -> dict:
            return {}

    with pytest.raises(RuntimeError):
        ocm_sync(ScheduledEvent())
    assert [b["OcmSweepRemovalHeld"] for b in emf_blobs(capsys.readouterr().out) if "OcmSweepRemovalHeld" in b] == [
        [1.0]]


def test_an_invocation_that_counted_nothing_prints_nothing_but_log_records():
    """In a real process (pytest resets warning filters per test): no Powertools warning on stderr."""
    code = ("from chalicelib.observability.handler import observed\n"
            "from devstack.lambda_context import LocalLambdaContext\n"
            "handler = observed(lambda event, context: 'ok')\n"
            "for _ in range(2):\n"
            "    print(handler({}, LocalLambdaContext('authorizer')))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert [line for line in lines if not line.startswith('{"_aws"')] == ["ok", "ok"]
    assert [directive(json.loads(line))["Metrics"] for line in lines if line.startswith('{"_aws"')] == [
        [{"Name": "ColdStart", "Unit": "Count"}]]
