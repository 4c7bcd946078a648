"""The SQS adapter on moto: names by the stage's rule, one URL lookup per queue, what SQS accepts."""

from __future__ import annotations

from chalicelib import bootstrap
from chalicelib.config import CoreSettings, resource_name
from chalicelib.events.queues import SQS_MAX_DELAY_SECONDS, StageQueues, message_attributes


class CountingSqs:
    """The real (moto) client, counting ``GetQueueUrl`` calls."""

    def __init__(self, sqs) -> None:
        self.sqs, self.lookups = sqs, 0

    def get_queue_url(self, **kwargs):
        self.lookups += 1
        return self.sqs.get_queue_url(**kwargs)

    def __getattr__(self, name):
        return getattr(self.sqs, name)


def test_the_name_rule_is_the_one_the_deploy_step_provisions(aws):
    core = bootstrap.settings(CoreSettings)
    assert resource_name(core.app_name, core.stage, "billing") == core.queue_name("billing") == "jucr-test-billing"
    queues = StageQueues.for_stage(bootstrap.aws_client("sqs"), core.app_name, core.stage)
    assert queues.url("billing") == aws.queue_url("billing")
    assert queues.arn("billing").endswith(f":{core.queue_name('billing')}")


def test_each_url_is_looked_up_once(aws):
    sqs = CountingSqs(bootstrap.aws_client("sqs"))
    queues = StageQueues(sqs, bootstrap.settings(CoreSettings).queue_name)
    for _ in range(3):
        queues.url("billing")
        queues.url("billing-dlq")
    assert sqs.lookups == 2


def test_send_shapes_attributes_and_caps_the_delay(aws):
    queues = StageQueues(bootstrap.aws_client("sqs"), bootstrap.settings(CoreSettings).queue_name)
    queues.send("billing-dlq", "{}", {"sourceQueue": "billing", "redriveCount": 2}, delay_seconds=-5)
    [message] = aws.receive_all("billing-dlq")
    attributes = message["MessageAttributes"]
    assert attributes["sourceQueue"] == {"DataType": "String", "StringValue": "billing"}
    assert attributes["redriveCount"] == {"DataType": "Number", "StringValue": "2"}
    queues.send("billing-dlq", "{}", delay_seconds=SQS_MAX_DELAY_SECONDS * 10)  # SQS would refuse 9000
    assert queues.depth("billing-dlq")["ApproximateNumberOfMessagesDelayed"] == 1


def test_a_received_attribute_is_passed_on_with_its_type():
    received = {"DataType": "Number", "StringValue": "3"}
    assert message_attributes({"redriveCount": received, "flag": True}) == {
        "redriveCount": {"DataType": "Number", "StringValue": "3"},
        "flag": {"DataType": "String", "StringValue": "True"},
    }
