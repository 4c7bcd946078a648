"""From the package, under the emulator: log records carry the Lambda context, metrics go out as EMF once."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.package.conftest import bus_event, resolver_event, user_registered

pytestmark = pytest.mark.xdist_group("package")


def _new_lines(functions, name: str, before: str) -> list[str]:
    return functions.emulator(name).log()[len(before):].splitlines()


def test_resolver_records_carry_the_lambda_context(functions, stage):
    before = functions.emulator("auth_resolver").log()
    payload = functions.invoke("auth_resolver", resolver_event("Mutation", "register", {"input": {
        "email": f"emf-{uuid.uuid4().hex[:8]}@example.com", "name": "Package Metrics",
        "password": "correct horse battery staple", "vehicle": {"brand": "Kia", "model": "EV6",
                                                                "batteryCapacity": 77.4}}}))
    stage.published()
    (record,) = [json.loads(line) for line in _new_lines(functions, "auth_resolver", before)
                 if '"user registered"' in line]
    assert record["userId"] == payload["user"]["id"]
    assert record["function_name"].endswith("auth_resolver") and record["function_request_id"]
    assert isinstance(record["cold_start"], bool)


def test_a_consumer_batch_publishes_its_metrics_once_with_the_queue_dimension(functions, stage):
    before = functions.emulator("wallet_opener").log()
    event = stage.sqs_event("wallets", [bus_event(user_registered(str(uuid.uuid4())), source="jucr.auth")])
    assert stage.deliver(functions.emulator("wallet_opener"), event) == {"batchItemFailures": []}
    blobs = [json.loads(line) for line in _new_lines(functions, "wallet_opener", before)
             if line.startswith('{"_aws"') and '"ColdStart"' not in line]
    assert len(blobs) == 1, blobs
    (declared,) = blobs[0]["_aws"]["CloudWatchMetrics"]
    assert declared["Namespace"] == "JUCR" and declared["Dimensions"] == [["queue", "service"]]
    assert blobs[0]["queue"] == "wallets" and blobs[0]["RecordsSucceeded"] == [1.0]
