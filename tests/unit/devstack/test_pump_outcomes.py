"""The pump's line tells what became of each message, from the handler's answer and its ``recordOutcome`` logs."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.observability.logs import logger
from chalicelib.topology import QueueSpec
from devstack.bus_log import BusLog
from devstack.pump import QueuePump


class FakeSqs:
    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.messages, self.deleted = messages, []

    def receive_message(self, **_: Any) -> dict[str, Any]:
        messages, self.messages = self.messages, []
        return {"Messages": messages}

    def delete_message_batch(self, Entries: list, **_: Any) -> None:  # noqa: N803 - boto3's name
        self.deleted.extend(Entries)

    def change_message_visibility(self, **_: Any) -> None:
        pass


def message(n: int) -> dict[str, Any]:
    body = {"detail-type": "SESSION_ENDED", "source": "jucr.session", "detail": {}}
    return {"MessageId": f"m{n}", "ReceiptHandle": f"r{n}", "Body": json.dumps(body),
            "Attributes": {"ApproximateReceiveCount": "1"}}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Like run_batch: keys per record, one outcome logged for some, a retry for one."""
    said = {"m1": "billed", "m2": "dead-lettered"}
    failures = []
    for record in event["Records"]:
        logger.thread_safe_append_keys(messageId=record["messageId"])
        if record["messageId"] in said:
            logger.info("done", extra={"recordOutcome": said[record["messageId"]]})
        if record["messageId"] == "m3":
            logger.warning("again", extra={"recordOutcome": "retry"})
            failures.append({"itemIdentifier": "m3"})
        logger.thread_safe_clear_keys()
    return {"batchItemFailures": failures}


def test_each_message_gets_its_real_outcome():
    lines: list[dict[str, Any]] = []
    sqs = FakeSqs([message(n) for n in range(1, 5)])
    pump = QueuePump(sqs, QueueSpec("billing", "billing_consumer"), "url", "arn", handler, lines.append, "eu")
    assert pump.poll_once() == 4
    assert {entry["messageId"]: entry["outcome"] for entry in lines} == {
        "m1": "billed", "m2": "dead-lettered", "m3": "retry", "m4": "ok"}
    assert [e["Id"] for e in sqs.deleted] == ["0", "1", "2"]


def test_outcomes_logged_outside_a_batch_are_not_kept():
    logger.thread_safe_append_keys(messageId="m1")
    logger.info("elsewhere", extra={"recordOutcome": "billed"})
    logger.thread_safe_clear_keys()
    lines: list[dict[str, Any]] = []
    pump = QueuePump(FakeSqs([message(1)]), QueueSpec("billing", "x"), "u", "a", lambda e, c: {}, lines.append, "eu")
    pump.poll_once()
    assert lines[0]["outcome"] == "ok"


def test_the_bus_log_writes_ids_only():
    lines: list[dict[str, Any]] = []
    body = {"id": "bus-1", "detail-type": "USER_REGISTERED", "source": "jucr.auth",
            "detail": {"eventId": "e-1", "userId": "u-1", "email": "a@b.example", "name": "Ann", "count": 3}}
    quiet = QueuePump(FakeSqs([dict(message(1), Body=json.dumps(body))]), QueueSpec("bus-log", None), "u", "a",
                      BusLog(lines.append), lines.append, "eu", report=False)
    quiet.poll_once()
    assert lines == [{"bus": "USER_REGISTERED", "source": "jucr.auth", "busEventId": "bus-1", "eventId": "e-1",
                      "userId": "u-1"}]
