"""CloudWatch alarms and their SNS topic, declared once and applied idempotently.

Used by the deploy step (real AWS) and by the local stack (moto), like
``appsync.infra``. Each alarm is compared with what exists and put only when it
differs, reporting "created", "updated" or "unchanged" through ``Changes``; a
second run reports only "unchanged". ``docs/runbook.md`` has one section per
alarm, under the alarm's name suffix (e.g. ``billing-dlq-depth``).

Our own metrics come from Powertools ``Metrics`` (namespace ``JUCR``), which
adds the dimension ``service=jucr`` to every metric, and the shared batch runner
adds ``queue=<short name>`` to the metrics of queue consumers: an alarm must
select exactly the dimensions a metric is published with, or it watches a
metric that never receives data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from appsync.infra import Changes
from chalicelib.sections import StageSettings
from chalicelib.topology import FUNCTION_TIMEOUTS, QUEUES

NAMESPACE = "JUCR"
SERVICE_DIMENSION = [{"Name": "service", "Value": "jucr"}]


def _queue_dimensions(short: str) -> list[dict[str, str]]:
    return [*SERVICE_DIMENSION, {"Name": "queue", "Value": short}]
MAX_EVALUATION_SECONDS = 7 * 86400
_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}

# Keys we set and therefore compare; anything else describe_alarms returns is AWS bookkeeping.
_COMPARED = ("AlarmDescription", "ActionsEnabled", "AlarmActions", "OKActions", "MetricName", "Namespace",
             "Statistic", "ExtendedStatistic", "Dimensions", "Period", "EvaluationPeriods", "DatapointsToAlarm",
             "Threshold", "ComparisonOperator", "TreatMissingData", "Metrics")


def topic_name(settings: StageSettings) -> str:
    return settings.core.resource_name("alarms")


def alarm_name(settings: StageSettings, suffix: str) -> str:
    return settings.core.resource_name(suffix)


def function_name(settings: StageSettings, function: str) -> str:
    """The Lambda name ``chalice deploy`` gives a function: ``<app>-<stage>-<name>``."""
    return settings.core.resource_name(function)


def schedule_seconds(expression: str) -> int | None:
    """Interval of a ``rate(...)`` schedule; a cron is taken as daily; ``off`` has none."""
    if expression == "off":
        return None
    match = _RATE.fullmatch(expression)
    if not match:
        return 86400
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


def _dlq_alarms(settings: StageSettings) -> list[dict[str, Any]]:
    out = []
    for spec in QUEUES:
        if not spec.is_dlq:
            continue
        dims = [{"Name": "QueueName", "Value": settings.core.queue_name(spec.short)}]
        out.append({
            "AlarmName": alarm_name(settings, f"{spec.short}-depth"),
            "AlarmDescription": f"Dead letters have sat in {spec.short} for 5 minutes: the reconciler is not "
                                f"draining it. Runbook: docs/runbook.md#{spec.short}-depth",
            "Namespace": "AWS/SQS", "MetricName": "ApproximateNumberOfMessagesVisible", "Dimensions": dims,
            "Statistic": "Maximum", "Period": 60, "EvaluationPeriods": 5, "DatapointsToAlarm": 5,
            "Threshold": 0.0, "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching",
        })
        out.append({
            "AlarmName": alarm_name(settings, f"{spec.short}-oldest-age"),
            "AlarmDescription": f"The oldest message in {spec.short} is older than "
                                f"{settings.alarm.dlq_age_alarm_seconds}s. "
                                f"Runbook: docs/runbook.md#{spec.short}-oldest-age",
            "Namespace": "AWS/SQS", "MetricName": "ApproximateAgeOfOldestMessage", "Dimensions": dims,
            "Statistic": "Maximum", "Period": 300, "EvaluationPeriods": 1,
            "Threshold": float(settings.alarm.dlq_age_alarm_seconds), "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
        })
    return out


def _count_alarm(settings: StageSettings, suffix: str, metric: str, queue: str, description: str,
                 anchor: str | None = None) -> dict[str, Any]:
    return {
        "AlarmName": alarm_name(settings, suffix),
        "AlarmDescription": f"{description} Runbook: docs/runbook.md#{anchor or suffix}",
        "Namespace": NAMESPACE, "MetricName": metric, "Dimensions": _queue_dimensions(queue),
        "Statistic": "Sum", "Period": 300, "EvaluationPeriods": 1,
        "Threshold": 0.0, "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching",
    }


def _error_rate_alarm(settings: StageSettings, function: str) -> dict[str, Any]:
    dims = [{"Name": "FunctionName", "Value": function_name(settings, function)}]

    def stat(metric_id: str, metric: str) -> dict[str, Any]:
        return {"Id": metric_id, "ReturnData": False, "MetricStat": {
            "Metric": {"Namespace": "AWS/Lambda", "MetricName": metric, "Dimensions": dims},
            "Period": 300, "Stat": "Sum"}}

    return {
        "AlarmName": alarm_name(settings, f"{function}-error-rate"),
        "AlarmDescription": f"More than {settings.alarm.alarm_error_rate_percent}% of {function} invocations failed in "
                            f"5 minutes. Runbook: docs/runbook.md#function-error-rate",
        "Metrics": [
            {"Id": "rate", "Expression": "IF(invocations > 0, 100 * errors / invocations, 0)",
             "Label": "error rate (%)", "ReturnData": True},
            stat("errors", "Errors"), stat("invocations", "Invocations"),
        ],
        "EvaluationPeriods": 1, "Threshold": float(settings.alarm.alarm_error_rate_percent),
        "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching",
    }


def _ocm_sync_alarm(settings: StageSettings) -> dict[str, Any] | None:
    interval = schedule_seconds(settings.schedule.ocm_sync_schedule)
    if interval is None:
        return None
    period = max(60, min(interval, MAX_EVALUATION_SECONDS // 2) // 60 * 60)
    return {
        "AlarmName": alarm_name(settings, "ocm-sync-stalled"),
        "AlarmDescription": f"No completed OCM sync in two schedule intervals ({settings.schedule.ocm_sync_schedule}). "
                            "Runbook: docs/runbook.md#ocm-sync-stalled",
        "Namespace": NAMESPACE, "MetricName": "OcmSyncCompleted", "Dimensions": SERVICE_DIMENSION,
        "Statistic": "Sum", "Period": period, "EvaluationPeriods": 2, "DatapointsToAlarm": 2,
        "Threshold": 1.0, "ComparisonOperator": "LessThanThreshold", "TreatMissingData": "breaching",
    }


def _removal_held_alarm(settings: StageSettings) -> dict[str, Any]:
    """A held sweep leaves delisted stations in the mirror until a person decides: tell someone."""
    return {
        "AlarmName": alarm_name(settings, "ocm-sweep-removal-held"),
        "AlarmDescription": "An OCM full sweep saw too few stations and removed nothing (more than half of the "
                            "live mirror unseen). Runbook: docs/runbook.md#ocm-sweep-removal-held",
        "Namespace": NAMESPACE, "MetricName": "OcmSweepRemovalHeld", "Dimensions": SERVICE_DIMENSION,
        "Statistic": "Sum", "Period": 300, "EvaluationPeriods": 1,
        "Threshold": 0.0, "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching",
    }


def _latency_alarm(settings: StageSettings) -> dict[str, Any]:
    return {
        "AlarmName": alarm_name(settings, "billing-latency-p99"),
        "AlarmDescription": f"p99 of SESSION_ENDED-to-billed latency above {settings.alarm.billing_latency_slo_ms} ms "
                            "for 15 minutes. Runbook: docs/runbook.md#billing-latency-p99",
        "Namespace": NAMESPACE, "MetricName": "EventLatencyMs", "Dimensions": _queue_dimensions("billing"),
        "ExtendedStatistic": "p99", "Period": 300, "EvaluationPeriods": 3, "DatapointsToAlarm": 3,
        "Threshold": float(settings.alarm.billing_latency_slo_ms), "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
    }


def desired_alarms(settings: StageSettings, topic_arn: str) -> list[dict[str, Any]]:
    """Every alarm this stage should have, as ``put_metric_alarm`` arguments."""
    alarms = _dlq_alarms(settings)
    alarms.append(_count_alarm(settings, "billing-failed", "BillingFailed", "billing-dlq",
                               "The reconciler gave up on at least one session and published BILLING_FAILED."))
    alarms.extend(
        _count_alarm(settings, f"{spec.short}-parked", "DeadLetterParked", spec.short,
                     f"The reconciler parked a dead letter from {spec.short} that it could neither re-drive nor "
                     "compensate.", anchor="dead-letters-parked")
        for spec in QUEUES if spec.is_dlq
    )
    alarms.extend(_error_rate_alarm(settings, fn) for fn in FUNCTION_TIMEOUTS)
    ocm = _ocm_sync_alarm(settings)
    if ocm:
        alarms.append(ocm)
    alarms.append(_removal_held_alarm(settings))
    alarms.append(_latency_alarm(settings))
    for alarm in alarms:
        alarm.update(ActionsEnabled=True, AlarmActions=[topic_arn], OKActions=[topic_arn])
    return alarms


def ensure_topic(clients: Callable[[str], Any], settings: StageSettings, changes: Changes) -> str:
    sns = clients("sns")
    name = topic_name(settings)
    for page in sns.get_paginator("list_topics").paginate():
        for topic in page.get("Topics", []):
            if topic["TopicArn"].rsplit(":", 1)[-1] == name:
                changes.record("unchanged", "sns topic", name)
                return topic["TopicArn"]
    arn = sns.create_topic(Name=name)["TopicArn"]
    changes.record("created", "sns topic", name)
    return arn


def _comparable(alarm: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key in _COMPARED:
        value = alarm.get(key)
        if value in (None, [], ""):
            continue
        if key == "Threshold":
            value = float(value)
        out[key] = value
    return out


def ensure_alarms(clients: Callable[[str], Any], settings: StageSettings, changes: Changes | None = None) -> Changes:
    """Create or update every alarm and the topic; put only what differs."""
    changes = changes if changes is not None else Changes()
    topic_arn = ensure_topic(clients, settings, changes)
    cloudwatch = clients("cloudwatch")
    desired = desired_alarms(settings, topic_arn)
    names = [a["AlarmName"] for a in desired]
    current: dict[str, dict[str, Any]] = {}
    for start in range(0, len(names), 100):
        response = cloudwatch.describe_alarms(AlarmNames=names[start:start + 100], AlarmTypes=["MetricAlarm"])
        current.update({a["AlarmName"]: a for a in response.get("MetricAlarms", [])})
    for alarm in desired:
        have = current.get(alarm["AlarmName"])
        if have is not None and _comparable(have) == _comparable(alarm):
            changes.record("unchanged", "alarm", alarm["AlarmName"])
            continue
        cloudwatch.put_metric_alarm(**alarm)
        changes.record("created" if have is None else "updated", "alarm", alarm["AlarmName"])
    stale = alarm_name(settings, "ocm-sync-stalled")
    if stale not in names and stale in _existing(cloudwatch, [stale]):
        cloudwatch.delete_alarms(AlarmNames=[stale])
        changes.record("deleted", "alarm", f"{stale} (OCM sync schedule is off)")
    return changes


def delete_alarms(clients: Callable[[str], Any], settings: StageSettings, changes: Changes | None = None) -> Changes:
    """Teardown: remove this stage's alarms and topic."""
    changes = changes if changes is not None else Changes()
    cloudwatch = clients("cloudwatch")
    names = [a["AlarmName"] for a in desired_alarms(settings, "unused")] + [alarm_name(settings, "ocm-sync-stalled")]
    existing = _existing(cloudwatch, sorted(set(names)))
    if existing:
        cloudwatch.delete_alarms(AlarmNames=existing)
    for name in existing:
        changes.record("deleted", "alarm", name)
    sns = clients("sns")
    for page in sns.get_paginator("list_topics").paginate():
        for topic in page.get("Topics", []):
            if topic["TopicArn"].rsplit(":", 1)[-1] == topic_name(settings):
                sns.delete_topic(TopicArn=topic["TopicArn"])
                changes.record("deleted", "sns topic", topic_name(settings))
    return changes


def _existing(cloudwatch: Any, names: list[str]) -> list[str]:
    found: list[str] = []
    for start in range(0, len(names), 100):
        response = cloudwatch.describe_alarms(AlarmNames=names[start:start + 100], AlarmTypes=["MetricAlarm"])
        found.extend(a["AlarmName"] for a in response.get("MetricAlarms", []))
    return found
