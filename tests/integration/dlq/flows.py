"""What the DLQ flow tests share: a Lambda context, the seed session as a bus event, dead letters, the CLI."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from chalicelib.__main__ import main as cli_main
from chalicelib.dlq.entry import reconcile


class Ctx:
    aws_request_id = "req-1"
    function_name = "reconcile_billing_dlq"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60000


# An hour ago: billing refuses a session older than SESSION_MAX_AGE_DAYS, whatever the reconciler decided.
ENDED_AT = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def session(session_id: str | None = None, **over) -> dict:
    return {"eventType": "SESSION_ENDED", "sessionId": session_id or str(uuid.uuid4()),
            "userId": "0b1732fa-631a-4952-b6d6-2d586ed9dbf8", "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f",
            "energyKwh": 22.4, "durationMinutes": 58, "endedAt": ENDED_AT, **over}


def bus_body(detail: dict) -> str:
    return json.dumps({"version": "0", "id": str(uuid.uuid4()), "detail-type": detail["eventType"],
                       "source": "jucr.session", "time": "2026-02-21T14:31:01Z", "detail": detail})


def put_dead(aws, body: str, **attrs: str) -> None:
    aws.client("sqs").send_message(QueueUrl=aws.queue_url("billing-dlq"), MessageBody=body, MessageAttributes={
        k: {"DataType": "String", "StringValue": v} for k, v in attrs.items()})


def lambda_event(messages: list[dict]) -> dict:
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-central-1:123456789012:jucr-test-billing-dlq", "awsRegion": "eu-central-1",
        "messageAttributes": {k: {"stringValue": v["StringValue"], "dataType": "String"}
                              for k, v in (m.get("MessageAttributes") or {}).items()},
    } for m in messages]}


def run_reconciler(aws) -> tuple[dict, list[dict]]:
    """Deliver whatever is in billing-dlq to the reconciler once, as Lambda would."""
    messages = aws.receive_all("billing-dlq")
    return reconcile("billing-dlq", lambda_event(messages), Ctx()), messages


def cli(capsys, *args: str) -> list[dict]:
    code = cli_main(["dlq", *args])
    # JSON lines, or a lone [] when nothing matched
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip() not in ("", "[]")]
    assert code == 0, lines
    return lines
