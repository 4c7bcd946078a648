import json

from appsync.infra import Changes, Infra
from chalicelib import bootstrap
from chalicelib.topology import FUNCTION_TIMEOUTS, QUEUES


def test_second_run_changes_nothing(aws):
    changes = Infra(bootstrap.aws_client, aws.settings, Changes()).apply_messaging()
    assert not changes.changed, changes.lines


def test_queues_have_redrive_retention_and_visibility(aws):
    sqs = aws.client("sqs")
    for spec in QUEUES:
        attrs = sqs.get_queue_attributes(QueueUrl=aws.queue_url(spec.short), AttributeNames=["All"])["Attributes"]
        if spec.dlq:
            policy = json.loads(attrs["RedrivePolicy"])
            assert int(policy["maxReceiveCount"]) == 5
            assert policy["deadLetterTargetArn"].endswith(f"jucr-test-{spec.dlq}")
            dlq = sqs.get_queue_attributes(QueueUrl=aws.queue_url(spec.dlq), AttributeNames=["All"])["Attributes"]
            assert int(dlq["MessageRetentionPeriod"]) > int(attrs["MessageRetentionPeriod"])
        if spec.consumer:
            assert int(attrs["VisibilityTimeout"]) >= 6 * FUNCTION_TIMEOUTS[spec.consumer]


def test_drifted_queue_is_repaired(aws):
    sqs = aws.client("sqs")
    sqs.set_queue_attributes(QueueUrl=aws.queue_url("billing"), Attributes={"VisibilityTimeout": "5"})
    changes = Infra(bootstrap.aws_client, aws.settings, Changes()).apply_messaging()
    assert ("updated", "queue", "jucr-test-billing (VisibilityTimeout)") in changes.lines
