"""Deliver SQS messages to the Chalice handlers the way the Lambda poller does.

Batches of up to ``batch_size`` records in Lambda's SQS event shape; the
handler's ``batchItemFailures`` are honoured (only successes are deleted); a
handler that raises fails the whole batch, which becomes visible again after a
back-off by receive count; SQS itself moves a message to its DLQ after
``maxReceiveCount`` receives (moto implements the redrive policy).

Each handled message gets one line whose ``outcome`` is what became of it:
``retry`` when the handler reported it failed (or crashed), else the
``recordOutcome`` the handler logged for it (``billed``, ``payment-failed``,
``dead-lettered``, ``compensated``, ``wallet-opened``, ...), else ``ok``. The
handlers' log records are heard in process by :class:`OutcomeTap`, keyed by the
``messageId`` the batch runner puts on every record it logs: structured fields,
not message text. Functions run from the package (``LOCAL_LAMBDAS=package``) log
in their emulator's process, so there the line says only ``ok`` or ``retry``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from chalicelib.observability.logs import logger
from chalicelib.topology import FUNCTION_TIMEOUTS, QueueSpec
from devstack.lambda_context import LocalLambdaContext

Emit = Callable[[dict[str, Any]], None]


class OutcomeTap(logging.Handler):
    """Hears ``recordOutcome`` in the app logger's records while this thread's pump runs a batch.

    A handler on the app's logger rather than a change to the functions: they already say
    how each record ended, for Lambda's logs; the pump only needs to listen in the same thread.
    """

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self._local = threading.local()

    def listen(self) -> dict[str, str]:
        """Start hearing this thread's records; returns messageId -> outcome, filled as they log."""
        self._local.heard = {}
        return self._local.heard

    def stop_listening(self) -> None:
        self._local.heard = None

    def emit(self, record: logging.LogRecord) -> None:
        heard = getattr(self._local, "heard", None)
        outcome = getattr(record, "recordOutcome", None)
        if heard is None or not isinstance(outcome, str):
            return
        # The batch runner appends messageId per record; in the logging thread it is still current.
        message_id = logger.thread_safe_get_current_keys().get("messageId")
        if message_id:
            heard[str(message_id)] = outcome  # the last word wins: a retry after a billing attempt


OUTCOMES = OutcomeTap()
logging.getLogger(logger.name).addHandler(OUTCOMES)


def lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One SQS message as Lambda hands it to a function."""
    attributes = {
        "ApproximateReceiveCount": "1",
        "SentTimestamp": str(int(time.time() * 1000)),
        "SenderId": "local",
        "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
    }
    attributes.update(message.get("Attributes", {}))
    message_attributes = {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value.get("DataType", "String"),
        }
        for name, value in (message.get("MessageAttributes") or {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class QueuePump(threading.Thread):
    def __init__(self, sqs: Any, spec: QueueSpec, queue_url: str, queue_arn: str, handler: Callable,
                 emit: Emit, region: str, backoff_base: float = 1.0, backoff_cap: float = 30.0,
                 report: bool = True) -> None:
        """``report`` False: no line per message (a handler that writes its own lines, such as the bus log)."""
        super().__init__(name=f"pump-{spec.short}", daemon=True)
        self.sqs, self.spec, self.url, self.arn = sqs, spec, queue_url, queue_arn
        self.handler, self.emit, self.region = handler, emit, region
        self.backoff_base, self.backoff_cap, self.report = backoff_base, backoff_cap, report
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # keep pumping; the stack must survive a hiccup
                self.emit({"pump": self.spec.short, "outcome": "poll-error", "error": type(exc).__name__})
                self.stopping.wait(1.0)

    def poll_once(self) -> int:
        response = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=self.spec.batch_size, WaitTimeSeconds=1,
            AttributeNames=["All"], MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [lambda_record(m, self.arn, self.region) for m in messages]}
        context = LocalLambdaContext(function_name=self.spec.consumer or "",
                                     timeout_seconds=FUNCTION_TIMEOUTS.get(self.spec.consumer or "", 60))
        heard = OUTCOMES.listen()
        try:
            result = self.handler(event, context) or {}
            failed_ids = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            crashed = None
        except Exception as exc:  # a crash fails the whole batch, as in Lambda
            failed_ids = {m["MessageId"] for m in messages}
            crashed = type(exc).__name__
        finally:
            OUTCOMES.stop_listening()
        done = [m for m in messages if m["MessageId"] not in failed_ids]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        for message in messages:
            receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            failed = message["MessageId"] in failed_ids
            if failed and crashed:
                delay = min(self.backoff_cap, self.backoff_base * 2 ** (receives - 1))
                self.sqs.change_message_visibility(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"],
                                                   VisibilityTimeout=int(delay))
            if not self.report:
                continue
            self.emit({
                "pump": self.spec.short, "function": self.spec.consumer, "messageId": message["MessageId"],
                "detailType": _detail_type(message["Body"]), "receiveCount": receives,
                "outcome": "retry" if failed else heard.get(message["MessageId"], "ok"),
                **({"crash": crashed} if crashed and failed else {}),
            })
        return len(messages)

    def stop(self) -> None:
        self.stopping.set()


def _detail_type(body: str) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data.get("detail-type") if isinstance(data, dict) else None


def drain_queue(sqs: Any, url: str, wait: int = 0) -> list[dict[str, Any]]:
    """Receive and delete everything visible on a queue (attributes included), for checks and captures."""
    out: list[dict[str, Any]] = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait,
                                     AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", []):
        for message in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        out.extend(got)
    return out


def queue_behind_rules(clients: Callable[[str], Any], bus: str, queue: str, rules: dict[str, dict[str, Any]],
                       target_id: str) -> tuple[str, str]:
    """A queue in moto fed by bus rules (name -> event pattern), idempotently; returns its URL and ARN.

    How the local stack sees what is on the bus (log, AppSync tap, captures for checks).
    """
    sqs, events = clients("sqs"), clients("events")
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]  # idempotent with equal attributes
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for rule, pattern in rules.items():
        events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(pattern), State="ENABLED")
        events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": target_id, "Arn": arn}])
    return url, arn
