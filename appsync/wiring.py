"""Settings Chalice cannot declare, attached to the resources `chalice deploy` made.

- ``ReportBatchItemFailures`` on every SQS event source mapping of our functions:
  without it Lambda ignores the ``batchItemFailures`` our handlers return, so one
  bad record re-delivers (and re-bills) the whole batch.
- Retry policy and dead-letter queue on the schedule rules' targets, and an async
  invoke config (bounded retries, on-failure destination ``ocm-sync-dlq``) on the
  schedule functions: a failed sync run lands where the reconciler looks.
- Queue policies on the DLQs so EventBridge may deliver dead letters there
  (without one, the rule target's ``DeadLetterConfig`` silently drops them).

Chalice's own resources are only *modified*; teardown reverts the schedule
targets and deletes the invoke configs (their destination queue goes away with
the teardown) and leaves the mappings alone (``ReportBatchItemFailures`` is
never wrong for our handlers).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appsync.drift import same
from appsync.infra import Changes
from chalicelib.sections import StageSettings
from chalicelib.topology import QUEUES, rule_name

SCHEDULE_DLQ = "ocm-sync-dlq"
# EventBridge -> Lambda (schedule target): retries with back-off for up to an hour.
SCHEDULE_RETRY_POLICY = {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 3600}
# Lambda async invoke: at most 2 retries (the service maximum), then the DLQ.
ASYNC_MAX_RETRIES = 2
ASYNC_MAX_EVENT_AGE = 3600
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"


@dataclass
class Deployed:
    """What `chalice deploy` recorded in ``.chalice/deployed/<stage>.json``."""

    functions: dict[str, str] = field(default_factory=dict)  # Chalice function name -> Lambda ARN
    schedule_rules: dict[str, str] = field(default_factory=dict)  # function name -> rule name (default bus)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Deployed:
        out = cls()
        for resource in doc.get("resources", []):
            kind = resource.get("resource_type")
            if kind == "lambda_function":
                out.functions[resource["name"]] = resource["lambda_arn"]
            elif kind == "cloudwatch_event":
                out.schedule_rules[resource["name"].removesuffix("-event")] = resource["rule_name"]
        return out


class Wiring:
    """Attaches the settings above; every method records created/updated/unchanged."""

    def __init__(self, clients: Callable[[str], Any], settings: StageSettings, changes: Changes, deployed: Deployed,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = clients
        self.settings = settings
        self.changes = changes
        self.deployed = deployed
        self.sleep = sleep

    def _queue_arn(self, short: str) -> str:
        sqs = self.client("sqs")
        url = sqs.get_queue_url(QueueName=self.settings.core.queue_name(short))["QueueUrl"]
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    # -- event source mappings ----------------------------------------------------------
    def ensure_report_batch_item_failures(self) -> None:
        lam = self.client("lambda")
        for name, arn in sorted(self.deployed.functions.items()):
            # By ARN: the API accepts a name too, but moto matches only the ARN.
            mappings = lam.list_event_source_mappings(FunctionName=arn).get("EventSourceMappings", [])
            for mapping in mappings:
                if not mapping.get("EventSourceArn", "").startswith("arn:aws:sqs:"):
                    continue
                label = f"{name} <- {mapping['EventSourceArn'].rsplit(':', 1)[-1]}"
                if REPORT_BATCH_ITEM_FAILURES in mapping.get("FunctionResponseTypes", []):
                    self.changes.record("unchanged", "event source mapping", label)
                    continue
                self._update_mapping(mapping["UUID"])
                self.changes.record("updated", "event source mapping", f"{label} (ReportBatchItemFailures)")

    def _update_mapping(self, uuid: str, attempts: int = 10) -> None:
        lam = self.client("lambda")
        for attempt in range(attempts):
            try:
                lam.update_event_source_mapping(UUID=uuid, FunctionResponseTypes=[REPORT_BATCH_ITEM_FAILURES])
                return
            except lam.exceptions.ResourceInUseException:  # still "Creating" right after chalice deploy
                if attempt == attempts - 1:
                    raise
                self.sleep(min(2 ** attempt, 15))

    # -- schedule targets + async invoke config ------------------------------------------
    def schedule_rule_arns(self) -> list[str]:
        events = self.client("events")
        arns = []
        for rule in self.deployed.schedule_rules.values():
            try:
                arns.append(events.describe_rule(Name=rule)["Arn"])
            except events.exceptions.ResourceNotFoundException:
                continue
        return arns

    def ensure_schedule_targets(self) -> None:
        events = self.client("events")
        dlq_arn = self._queue_arn(SCHEDULE_DLQ)
        for function, rule in sorted(self.deployed.schedule_rules.items()):
            for target in events.list_targets_by_rule(Rule=rule)["Targets"]:
                desired = dict(target, RetryPolicy=SCHEDULE_RETRY_POLICY, DeadLetterConfig={"Arn": dlq_arn})
                label = f"{rule} -> {function}"
                if target == desired:
                    self.changes.record("unchanged", "schedule target", label)
                else:
                    events.put_targets(Rule=rule, Targets=[desired])
                    self.changes.record("updated", "schedule target", f"{label} (retry policy, DLQ)")

    def ensure_async_invoke_configs(self) -> None:
        lam = self.client("lambda")
        dlq_arn = self._queue_arn(SCHEDULE_DLQ)
        desired = {"MaximumRetryAttempts": ASYNC_MAX_RETRIES, "MaximumEventAgeInSeconds": ASYNC_MAX_EVENT_AGE,
                   "DestinationConfig": {"OnFailure": {"Destination": dlq_arn}}}
        for function in sorted(self.deployed.schedule_rules):
            arn = self.deployed.functions[function]
            try:
                current = lam.get_function_event_invoke_config(FunctionName=arn)
            except lam.exceptions.ResourceNotFoundException:
                current = None
            if current is not None and same(current, desired):
                self.changes.record("unchanged", "async invoke config", function)
                continue
            lam.put_function_event_invoke_config(FunctionName=arn, **desired)
            self.changes.record("created" if current is None else "updated", "async invoke config", function)

    # -- DLQ policies --------------------------------------------------------------------
    def dlq_sources(self) -> dict[str, list[str]]:
        """DLQ short name -> ARNs of the rules whose targets dead-letter into it."""
        events = self.client("events")
        bus = self.settings.core.event_bus_name
        sources: dict[str, list[str]] = {}
        for spec in QUEUES:
            if spec.dlq and spec.detail_types:
                arn = events.describe_rule(Name=rule_name(self.settings.core, spec), EventBusName=bus)["Arn"]
                sources.setdefault(spec.dlq, []).append(arn)
        schedule_arns = self.schedule_rule_arns()
        if schedule_arns:
            sources.setdefault(SCHEDULE_DLQ, []).extend(schedule_arns)
        return sources

    def ensure_dlq_policies(self) -> None:
        sqs = self.client("sqs")
        for short, rule_arns in sorted(self.dlq_sources().items()):
            url = sqs.get_queue_url(QueueName=self.settings.core.queue_name(short))["QueueUrl"]
            policy = {
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "AllowRuleDeadLetters",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": self._queue_arn(short),
                    "Condition": {"ArnEquals": {"aws:SourceArn": sorted(rule_arns)}},
                }],
            }
            current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get("Attributes", {})
            name = self.settings.core.queue_name(short)
            if current.get("Policy") and json.loads(current["Policy"]) == policy:
                self.changes.record("unchanged", "queue policy", name)
                continue
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
            self.changes.record("updated" if current.get("Policy") else "created", "queue policy", name)

    # -- all -----------------------------------------------------------------------------
    def apply(self) -> None:
        self.ensure_dlq_policies()
        if self.deployed.functions:
            self.ensure_report_batch_item_failures()
            self.ensure_schedule_targets()
            self.ensure_async_invoke_configs()

    def teardown(self) -> None:
        lam = self.client("lambda")
        events = self.client("events")
        for function, rule in sorted(self.deployed.schedule_rules.items()):
            try:
                targets = events.list_targets_by_rule(Rule=rule)["Targets"]
            except events.exceptions.ResourceNotFoundException:
                targets = []
            for target in targets:
                if "RetryPolicy" in target or "DeadLetterConfig" in target:
                    plain = {k: v for k, v in target.items() if k not in ("RetryPolicy", "DeadLetterConfig")}
                    events.put_targets(Rule=rule, Targets=[plain])
                    self.changes.record("reverted", "schedule target", f"{rule} -> {function}")
            try:
                lam.delete_function_event_invoke_config(FunctionName=self.deployed.functions[function])
                self.changes.record("deleted", "async invoke config", function)
            except (lam.exceptions.ResourceNotFoundException, KeyError):
                pass

