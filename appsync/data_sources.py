"""AppSync data sources and resolvers: one Lambda data source per resolver function, direct resolvers.

Resolvers are direct Lambda resolvers (no mapping templates: AppSync sends the full
context); the publish mutations run on a NONE data source with a pass-through template,
and the per-user subscriptions get the guard template of ``appsync.subscriptions``, so a
client only receives its own notifications.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from appsync.drift import same
from appsync.infra import Changes
from appsync.subscriptions import subscription_resolvers

NONE_DATA_SOURCE = "PublishNone"
NONE_REQUEST_TEMPLATE = '{"version": "2018-05-29", "payload": $util.toJson($context.arguments.input)}'
NONE_RESPONSE_TEMPLATE = "$util.toJson($context.result)"


def lambda_functions_used(resolver_map: Mapping[str, Any]) -> list[str]:
    return sorted({fn for fn in resolver_map["resolvers"].values() if fn != "NONE"})


def desired_data_sources(resolver_map: Mapping[str, Any], functions: Mapping[str, str],
                         role_arn: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {
        fn: {"type": "AWS_LAMBDA", "serviceRoleArn": role_arn, "lambdaConfig": {"lambdaFunctionArn": functions[fn]}}
        for fn in lambda_functions_used(resolver_map)
    }
    out[NONE_DATA_SOURCE] = {"type": "NONE"}
    return out


def ensure_data_sources(appsync: Any, api_id: str, desired: Mapping[str, dict[str, Any]], changes: Changes) -> None:
    for name, wanted in desired.items():
        try:
            current = appsync.get_data_source(apiId=api_id, name=name)["dataSource"]
        except appsync.exceptions.NotFoundException:
            appsync.create_data_source(apiId=api_id, name=name, **wanted)
            changes.record("created", "data source", name)
            continue
        if same(current, wanted):
            changes.record("unchanged", "data source", name)
        else:
            appsync.update_data_source(apiId=api_id, name=name, **wanted)
            changes.record("updated", "data source", name)


def desired_resolvers(resolver_map: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path, fn in sorted(resolver_map["resolvers"].items()):
        if fn == "NONE":
            out[path] = {"dataSourceName": NONE_DATA_SOURCE, "kind": "UNIT",
                         "requestMappingTemplate": NONE_REQUEST_TEMPLATE,
                         "responseMappingTemplate": NONE_RESPONSE_TEMPLATE}
        else:  # direct Lambda resolver: no templates, AppSync sends the full context
            out[path] = {"dataSourceName": fn, "kind": "UNIT"}
    out.update(subscription_resolvers(NONE_DATA_SOURCE))
    return out


def ensure_resolvers(appsync: Any, api_id: str, desired: Mapping[str, dict[str, Any]], changes: Changes) -> None:
    for path, wanted in desired.items():
        type_name, field_name = path.split(".", 1)
        key = {"apiId": api_id, "typeName": type_name, "fieldName": field_name}
        try:
            current = appsync.get_resolver(**key)["resolver"]
        except appsync.exceptions.NotFoundException:
            appsync.create_resolver(**key, **wanted)
            changes.record("created", "resolver", path)
            continue
        # A template someone added by hand is stale too: direct resolvers have none.
        stale = any(current.get(k) != v for k, v in wanted.items()) or (
            "requestMappingTemplate" not in wanted and current.get("requestMappingTemplate"))
        if stale:
            appsync.update_resolver(**key, **wanted)
            changes.record("updated", "resolver", path)
        else:
            changes.record("unchanged", "resolver", path)
