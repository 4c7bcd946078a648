"""Bus -> AppSync: one rule per notification, its AppSync target, and the role EventBridge uses.

The rules, targets and input transformers are defined in ``appsync.subscriptions``
(the local stack runs them too); this module puts them on the stage's bus and
gives EventBridge ``appsync:GraphQL`` on the publish mutations only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from appsync.infra import Changes
from appsync.subscriptions import BUS_TO_MUTATION, bus_rule_name, bus_targets


def endpoint_arn(api: Mapping[str, Any]) -> str:
    """EventBridge addresses AppSync by the GraphQL endpoint id (the URL's first label)."""
    _, _, _, region, account, _ = api["arn"].split(":", 5)
    endpoint_id = (urlparse(api["uris"]["GRAPHQL"]).hostname or "").split(".")[0]
    return f"arn:aws:appsync:{region}:{account}:endpoints/graphql-api/{endpoint_id}"


def events_role_policy(api: Mapping[str, Any]) -> dict[str, Any]:
    fields = [f"{api['arn']}/types/Mutation/fields/{m}" for m in BUS_TO_MUTATION.values()]
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["appsync:GraphQL"], "Resource": fields}]}


def ensure_bus_rules(events: Any, api: Mapping[str, Any], schema: Any, bus: str, prefix: str, role_arn: str,
                     tags: Mapping[str, str], changes: Changes) -> None:
    for spec in bus_targets(schema):
        name = bus_rule_name(prefix, spec.detail_type)
        try:
            current = events.describe_rule(Name=name, EventBusName=bus)
        except events.exceptions.ResourceNotFoundException:
            current = None
        if current is None or json.loads(current.get("EventPattern", "{}")) != spec.pattern:
            events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(spec.pattern), State="ENABLED",
                            Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
            changes.record("created" if current is None else "updated", "rule", name)
        else:
            changes.record("unchanged", "rule", name)
        target = spec.target(endpoint_arn(api), role_arn)
        have = {t["Id"]: t for t in events.list_targets_by_rule(Rule=name, EventBusName=bus)["Targets"]}
        label = f"{name} -> {spec.mutation}"
        if have.get("appsync") == target:
            changes.record("unchanged", "rule target", label)
        else:
            events.put_targets(Rule=name, EventBusName=bus, Targets=[target])
            changes.record("updated" if "appsync" in have else "created", "rule target", label)
