"""Idempotent provisioning of the bus (with its policy), queues (with redrive) and routing rules.

Used by the deploy step (real AWS) and by the local stack (moto), so both get
the same resources from the same code. Every ``ensure_*`` reports "created",
"updated" or "unchanged"; a second run reports only "unchanged".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.contracts.events import trusted_sources
from chalicelib.sections import StageSettings
from chalicelib.topology import QUEUES, QueueSpec, rule_name


@dataclass
class Changes:
    """What a run did, one line per resource, printed by the deploy step."""

    lines: list[tuple[str, str, str]] = field(default_factory=list)
    echo: Callable[[str], None] | None = None

    def record(self, action: str, kind: str, name: str) -> None:
        self.lines.append((action, kind, name))
        if self.echo:
            self.echo(f"{action:9} {kind:22} {name}")

    @property
    def changed(self) -> bool:
        return any(action != "unchanged" for action, _, _ in self.lines)


class Infra:
    """Provisioner bound to boto3 clients (``sqs``, ``events``) and settings."""

    def __init__(self, clients: Callable[[str], Any], settings: StageSettings, changes: Changes | None = None) -> None:
        self.client = clients
        self.settings = settings
        self.changes = changes or Changes()
        self.account_id: str | None = None

    # -- names -------------------------------------------------------------
    def queue_name(self, short: str) -> str:
        return self.settings.core.queue_name(short)

    def queue_url(self, short: str) -> str:
        return self.client("sqs").get_queue_url(QueueName=self.queue_name(short))["QueueUrl"]

    def queue_arn(self, short: str) -> str:
        attrs = self.client("sqs").get_queue_attributes(QueueUrl=self.queue_url(short), AttributeNames=["QueueArn"])
        return attrs["Attributes"]["QueueArn"]

    # -- bus ---------------------------------------------------------------
    def ensure_bus(self) -> str:
        events = self.client("events")
        name = self.settings.core.event_bus_name
        try:
            arn = events.describe_event_bus(Name=name)["Arn"]
            self.changes.record("unchanged", "event bus", name)
        except events.exceptions.ResourceNotFoundException:
            arn = events.create_event_bus(Name=name)["EventBusArn"]
            self.changes.record("created", "event bus", name)
        return arn

    def bus_policy(self, bus_arn: str) -> dict[str, Any]:
        """Only this account may put events on the bus, and only under a source we know.

        The Allow names this account alone, so no other account can put at all (cross-account
        PutEvents needs the bus policy's grant). The Deny is what binds principals of this
        account too: whatever their own IAM policy allows, a source outside the trusted map
        is refused before any rule sees it.
        """
        partition, account = bus_arn.split(":")[1], bus_arn.split(":")[4]
        sources = sorted(set(trusted_sources(self.settings.core.session_event_source).values()))
        put = {"Action": "events:PutEvents", "Resource": bus_arn}
        return {"Version": "2012-10-17", "Statement": [
            {"Sid": "ThisAccountKnownSources", "Effect": "Allow",
             "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"}, **put,
             "Condition": {"StringEquals": {"events:source": sources}}},
            {"Sid": "DenyUnknownSources", "Effect": "Deny", "Principal": "*",
             **put, "Condition": {"StringNotEquals": {"events:source": sources}}},
        ]}

    def ensure_bus_policy(self, bus_arn: str) -> None:
        events = self.client("events")
        name = self.settings.core.event_bus_name
        desired = self.bus_policy(bus_arn)
        current = events.describe_event_bus(Name=name).get("Policy")
        if current and json.loads(current) == desired:
            self.changes.record("unchanged", "bus policy", name)
            return
        events.put_permission(EventBusName=name, Policy=json.dumps(desired))
        self.changes.record("updated" if current else "created", "bus policy", name)

    # -- queues ------------------------------------------------------------
    def desired_queue_attributes(self, spec: QueueSpec) -> dict[str, str]:
        attrs = {
            "VisibilityTimeout": str(spec.visibility_timeout()),
            "MessageRetentionPeriod": str(spec.retention()),
        }
        if spec.dlq:
            attrs["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": self.queue_arn(spec.dlq),
                 "maxReceiveCount": self.settings.queue.max_receive_count},
                separators=(",", ":"),
            )
        return attrs

    def ensure_queue(self, spec: QueueSpec) -> str:
        sqs = self.client("sqs")
        name = self.queue_name(spec.short)
        desired = self.desired_queue_attributes(spec)
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist:
            url = sqs.create_queue(QueueName=name, Attributes=desired)["QueueUrl"]
            self.changes.record("created", "queue", name)
            return url
        current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        diff = {k: v for k, v in desired.items() if _normalise(k, current.get(k)) != _normalise(k, v)}
        if diff:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=diff)
            self.changes.record("updated", "queue", f"{name} ({', '.join(sorted(diff))})")
        else:
            self.changes.record("unchanged", "queue", name)
        return url

    def ensure_queue_policy(self, spec: QueueSpec, rule_arn: str) -> None:
        """Allow the bus rule (and only it) to send to the queue."""
        sqs = self.client("sqs")
        url = self.queue_url(spec.short)
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AllowBusRule",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": self.queue_arn(spec.short),
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                }
            ],
        }
        current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get("Attributes", {})
        if current.get("Policy") and json.loads(current["Policy"]) == policy:
            self.changes.record("unchanged", "queue policy", self.queue_name(spec.short))
            return
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
        self.changes.record("created" if not current.get("Policy") else "updated", "queue policy",
                            self.queue_name(spec.short))

    # -- rules -------------------------------------------------------------
    def ensure_queue_rule(self, spec: QueueSpec) -> str:
        events = self.client("events")
        name = rule_name(self.settings.core, spec)
        bus = self.settings.core.event_bus_name
        # Trusted by source, not by name: a SESSION_ENDED from anywhere but the Session Service is not billed.
        # (With several detail-types the pattern would also let one type in from another's source; the
        # consumer checks each pair, so that stays refused.)
        sources = sorted(set(spec.accepted_sources(self.settings.core).values()))
        pattern = json.dumps({"source": sources, "detail-type": list(spec.detail_types)}, separators=(",", ":"))
        try:
            current = events.describe_rule(Name=name, EventBusName=bus)
        except events.exceptions.ResourceNotFoundException:
            current = None
        if current is None or json.loads(current.get("EventPattern", "{}")) != json.loads(pattern):
            arn = events.put_rule(Name=name, EventBusName=bus, EventPattern=pattern, State="ENABLED")["RuleArn"]
            self.changes.record("created" if current is None else "updated", "rule", name)
        else:
            arn = current["Arn"]
            self.changes.record("unchanged", "rule", name)
        target = {"Id": f"{spec.short}-queue", "Arn": self.queue_arn(spec.short)}
        if spec.dlq:
            target["DeadLetterConfig"] = {"Arn": self.queue_arn(spec.dlq)}
            target["RetryPolicy"] = {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 3600}
        existing = {t["Id"]: t for t in events.list_targets_by_rule(Rule=name, EventBusName=bus)["Targets"]}
        have = existing.get(target["Id"])
        if have and all(have.get(k) == v for k, v in target.items()):
            self.changes.record("unchanged", "rule target", f"{name} -> {spec.short}")
        else:
            events.put_targets(Rule=name, EventBusName=bus, Targets=[target])
            self.changes.record("created" if not have else "updated", "rule target", f"{name} -> {spec.short}")
        return arn

    # -- all -----------------------------------------------------------------
    def apply_messaging(self) -> Changes:
        self.ensure_bus_policy(self.ensure_bus())
        for spec in QUEUES:  # DLQs first (QUEUES lists them first), so redrive can name them
            self.ensure_queue(spec)
        for spec in QUEUES:
            if spec.detail_types:
                rule_arn = self.ensure_queue_rule(spec)
                self.ensure_queue_policy(spec, rule_arn)
        return self.changes


def delete_rule(events: Any, name: str, bus: str, changes: Changes) -> None:
    """Remove a rule and its targets (EventBridge refuses to delete a rule that still has targets)."""
    try:
        targets = events.list_targets_by_rule(Rule=name, EventBusName=bus)["Targets"]
    except events.exceptions.ResourceNotFoundException:
        return
    if targets:
        events.remove_targets(Rule=name, EventBusName=bus, Ids=[t["Id"] for t in targets])
    events.delete_rule(Name=name, EventBusName=bus)
    changes.record("deleted", "rule", name)


def _normalise(key: str, value: Any) -> Any:
    if value is None:
        return None
    if key in ("RedrivePolicy", "Policy"):
        data = json.loads(value)
        if "maxReceiveCount" in data:
            data["maxReceiveCount"] = int(data["maxReceiveCount"])
        return data
    return str(value)
