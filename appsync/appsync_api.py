"""The AppSync half of the deploy step: API, schema, data sources, resolvers, bus -> subscriptions.

Identity: the API is found by name (``<app>-<stage>``) *and* our tag, so we
never adopt or delete an API we did not make. Schema changes are detected by a
SHA-256 of ``schema.graphql`` kept in a tag (AppSync returns a re-generated SDL,
not what we uploaded, so text comparison cannot work). Resolvers are direct
Lambda resolvers (no mapping templates); the publish mutations run on a NONE
data source with a pass-through template, and the per-user subscriptions get a
guard template so a client only receives its own notifications.

The bus -> AppSync rules, targets and the guard template are defined in
``appsync.subscriptions``, which the local stack runs too.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from appsync.infra import Changes, delete_rule
from appsync.subscriptions import (  # noqa: F401 - re-exported: the deploy surface tests read them here
    BUS_TO_MUTATION,
    GUARDED_SUBSCRIPTIONS,
    SUBSCRIPTION_GUARD_REQUEST,
    BusTarget,
    bus_rule_name,
    bus_targets,
    subscription_resolvers,
)
from chalicelib.config import Settings

MANAGED_TAG = "jucr:managed-by"
MANAGED_VALUE = "appsync.deploy"
SCHEMA_TAG = "jucr:schema-sha256"
NONE_DATA_SOURCE = "PublishNone"
API_KEY_DESCRIPTION = "jucr public key (register/login/refreshToken)"
API_KEY_DAYS = 365
API_KEY_RENEW_DAYS = 30

NONE_REQUEST_TEMPLATE = '{"version": "2018-05-29", "payload": $util.toJson($context.arguments.input)}'
NONE_RESPONSE_TEMPLATE = "$util.toJson($context.result)"


def schema_sha(schema_text: str) -> str:
    return hashlib.sha256(schema_text.encode()).hexdigest()


class AppSyncApi:
    """Provisioner for the GraphQL API, bound to boto3 clients (appsync, lambda, iam, events)."""

    def __init__(self, clients: Callable[[str], Any], settings: Settings, changes: Changes,
                 functions: dict[str, str], resolver_map: dict[str, Any], schema_text: str,
                 sleep: Callable[[float], None] = time.sleep, now: Callable[[], float] = time.time) -> None:
        self.client = clients
        self.settings = settings
        self.changes = changes
        self.functions = functions
        self.resolver_map = resolver_map
        self.schema_text = schema_text
        self.sleep = sleep
        self.now = now
        self.prefix = f"{settings.app_name}-{settings.stage}"

    # -- names ---------------------------------------------------------------------------
    @property
    def api_name(self) -> str:
        return self.prefix

    @property
    def datasource_role_name(self) -> str:
        return f"{self.prefix}-appsync-datasources"

    @property
    def events_role_name(self) -> str:
        return f"{self.prefix}-events-to-appsync"

    @property
    def permission_sid(self) -> str:
        return f"{self.prefix}-appsync-authorizer"

    def bus_rule_name(self, detail_type: str) -> str:
        return bus_rule_name(self.prefix, detail_type)

    def tags(self) -> dict[str, str]:
        return {MANAGED_TAG: MANAGED_VALUE, "jucr:stage": self.settings.stage}

    # -- API -----------------------------------------------------------------------------
    def find_api(self) -> dict[str, Any] | None:
        appsync = self.client("appsync")
        token = None
        while True:
            page = appsync.list_graphql_apis(**({"nextToken": token} if token else {}))
            for api in page.get("graphqlApis", []):
                if api["name"] == self.api_name and api.get("tags", {}).get(MANAGED_TAG) == MANAGED_VALUE:
                    return api
            token = page.get("nextToken")
            if not token:
                return None

    def desired_api(self) -> dict[str, Any]:
        return {
            "authenticationType": "AWS_LAMBDA",
            "lambdaAuthorizerConfig": {
                "authorizerUri": self.functions["authorizer"],
                "authorizerResultTtlInSeconds": self.settings.jwt_authorizer_cache_seconds,
            },
            "additionalAuthenticationProviders": [{"authenticationType": "API_KEY"},
                                                  {"authenticationType": "AWS_IAM"}],
        }

    def ensure_api(self) -> dict[str, Any]:
        appsync = self.client("appsync")
        desired = self.desired_api()
        api = self.find_api()
        if api is None:
            api = appsync.create_graphql_api(name=self.api_name, tags=self.tags(), **desired)["graphqlApi"]
            self.changes.record("created", "graphql api", self.api_name)
        elif any(not _same(api.get(k), v) for k, v in desired.items()):
            api = appsync.update_graphql_api(apiId=api["apiId"], name=self.api_name, **desired)["graphqlApi"]
            self.changes.record("updated", "graphql api", self.api_name)
        else:
            self.changes.record("unchanged", "graphql api", self.api_name)
        return api

    def ensure_authorizer_permission(self, api: dict[str, Any]) -> None:
        """Let AppSync (this API only) invoke the authorizer Lambda."""
        lam = self.client("lambda")
        function = self.functions["authorizer"]
        statement = self._permission_statement(function)
        label = f"authorizer <- appsync {api['apiId']}"
        if statement is not None and _source_arn(statement) == api["arn"]:
            self.changes.record("unchanged", "lambda permission", label)
            return
        if statement is not None:
            lam.remove_permission(FunctionName=function, StatementId=self.permission_sid)
        lam.add_permission(FunctionName=function, StatementId=self.permission_sid, Action="lambda:InvokeFunction",
                           Principal="appsync.amazonaws.com", SourceArn=api["arn"])
        self.changes.record("created" if statement is None else "updated", "lambda permission", label)

    def _permission_statement(self, function: str) -> dict[str, Any] | None:
        lam = self.client("lambda")
        try:
            policy = json.loads(lam.get_policy(FunctionName=function)["Policy"])
        except lam.exceptions.ResourceNotFoundException:
            return None
        return next((s for s in policy.get("Statement", []) if s.get("Sid") == self.permission_sid), None)

    def ensure_api_key(self, api: dict[str, Any]) -> str:
        """One API key for the public mutations, renewed when it has under 30 days left."""
        appsync = self.client("appsync")
        keys = [k for k in appsync.list_api_keys(apiId=api["apiId"]).get("apiKeys", [])
                if k.get("description") == API_KEY_DESCRIPTION]
        expires = int(self.now()) + API_KEY_DAYS * 86400
        if not keys:
            key = appsync.create_api_key(apiId=api["apiId"], description=API_KEY_DESCRIPTION, expires=expires)
            self.changes.record("created", "api key", _masked(key["apiKey"]["id"]))
            return key["apiKey"]["id"]
        key = keys[0]
        if int(key.get("expires", 0)) - self.now() < API_KEY_RENEW_DAYS * 86400:
            appsync.update_api_key(apiId=api["apiId"], id=key["id"], expires=expires)
            self.changes.record("updated", "api key", f"{_masked(key['id'])} (expiry renewed)")
        else:
            self.changes.record("unchanged", "api key", _masked(key["id"]))
        return key["id"]

    def ensure_schema(self, api: dict[str, Any], timeout: float = 300.0) -> None:
        appsync = self.client("appsync")
        sha = schema_sha(self.schema_text)
        tags = appsync.list_tags_for_resource(resourceArn=api["arn"]).get("tags", {})
        if tags.get(SCHEMA_TAG) == sha:
            self.changes.record("unchanged", "schema", f"{self.api_name} ({sha[:12]})")
            return
        appsync.start_schema_creation(apiId=api["apiId"], definition=self.schema_text.encode())
        deadline = self.now() + timeout
        while True:
            status = appsync.get_schema_creation_status(apiId=api["apiId"])
            if status["status"] in ("SUCCESS", "ACTIVE"):
                break
            if status["status"] == "FAILED" or self.now() > deadline:
                raise RuntimeError(f"schema upload {status['status']}: {status.get('details', '')}")
            self.sleep(2)
        appsync.tag_resource(resourceArn=api["arn"], tags={SCHEMA_TAG: sha})
        self.changes.record("created" if SCHEMA_TAG not in tags else "updated", "schema",
                            f"{self.api_name} ({sha[:12]})")

    # -- roles ---------------------------------------------------------------------------
    def ensure_role(self, name: str, service: str, policy: dict[str, Any]) -> str:
        iam = self.client("iam")
        trust = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}
        try:
            arn = iam.get_role(RoleName=name)["Role"]["Arn"]
            created = False
        except iam.exceptions.NoSuchEntityException:
            arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                                  Tags=[{"Key": k, "Value": v} for k, v in self.tags().items()])["Role"]["Arn"]
            created = True
        try:
            current = iam.get_role_policy(RoleName=name, PolicyName="jucr-deploy")["PolicyDocument"]
            current = json.loads(current) if isinstance(current, str) else current
        except iam.exceptions.NoSuchEntityException:
            current = None
        if current != policy:
            iam.put_role_policy(RoleName=name, PolicyName="jucr-deploy", PolicyDocument=json.dumps(policy))
        if created:
            self.changes.record("created", "iam role", name)
        else:
            self.changes.record("unchanged" if current == policy else "updated", "iam role", name)
        return arn

    def lambda_functions_used(self) -> list[str]:
        return sorted({fn for fn in self.resolver_map["resolvers"].values() if fn != "NONE"})

    def ensure_datasource_role(self) -> str:
        resources = sorted(self.functions[fn] for fn in self.lambda_functions_used())
        policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": resources}]}
        return self.ensure_role(self.datasource_role_name, "appsync.amazonaws.com", policy)

    # -- data sources + resolvers --------------------------------------------------------
    def desired_data_sources(self, role_arn: str) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {
            fn: {"type": "AWS_LAMBDA", "serviceRoleArn": role_arn,
                 "lambdaConfig": {"lambdaFunctionArn": self.functions[fn]}}
            for fn in self.lambda_functions_used()
        }
        out[NONE_DATA_SOURCE] = {"type": "NONE"}
        return out

    def ensure_data_sources(self, api: dict[str, Any], role_arn: str) -> None:
        appsync = self.client("appsync")
        for name, desired in self.desired_data_sources(role_arn).items():
            try:
                current = appsync.get_data_source(apiId=api["apiId"], name=name)["dataSource"]
            except appsync.exceptions.NotFoundException:
                appsync.create_data_source(apiId=api["apiId"], name=name, **desired)
                self.changes.record("created", "data source", name)
                continue
            if all(_same(current.get(k), v) for k, v in desired.items()):
                self.changes.record("unchanged", "data source", name)
            else:
                appsync.update_data_source(apiId=api["apiId"], name=name, **desired)
                self.changes.record("updated", "data source", name)

    def desired_resolvers(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for path, fn in sorted(self.resolver_map["resolvers"].items()):
            if fn == "NONE":
                out[path] = {"dataSourceName": NONE_DATA_SOURCE, "kind": "UNIT",
                             "requestMappingTemplate": NONE_REQUEST_TEMPLATE,
                             "responseMappingTemplate": NONE_RESPONSE_TEMPLATE}
            else:  # direct Lambda resolver: no templates, AppSync sends the full context
                out[path] = {"dataSourceName": fn, "kind": "UNIT"}
        out.update(subscription_resolvers(NONE_DATA_SOURCE))
        return out

    def ensure_resolvers(self, api: dict[str, Any]) -> None:
        appsync = self.client("appsync")
        for path, desired in self.desired_resolvers().items():
            type_name, field_name = path.split(".", 1)
            key = {"apiId": api["apiId"], "typeName": type_name, "fieldName": field_name}
            try:
                current = appsync.get_resolver(**key)["resolver"]
            except appsync.exceptions.NotFoundException:
                appsync.create_resolver(**key, **desired)
                self.changes.record("created", "resolver", path)
                continue
            stale = any(current.get(k) != v for k, v in desired.items()) or (
                "requestMappingTemplate" not in desired and current.get("requestMappingTemplate"))
            if stale:
                appsync.update_resolver(**key, **desired)
                self.changes.record("updated", "resolver", path)
            else:
                self.changes.record("unchanged", "resolver", path)

    # -- bus -> AppSync ------------------------------------------------------------------
    def endpoint_arn(self, api: dict[str, Any]) -> str:
        """EventBridge addresses AppSync by the GraphQL endpoint id (the URL's first label)."""
        _, _, _, region, account, _ = api["arn"].split(":", 5)
        endpoint_id = (urlparse(api["uris"]["GRAPHQL"]).hostname or "").split(".")[0]
        return f"arn:aws:appsync:{region}:{account}:endpoints/graphql-api/{endpoint_id}"

    def ensure_events_role(self, api: dict[str, Any]) -> str:
        fields = [f"{api['arn']}/types/Mutation/fields/{m}" for m in BUS_TO_MUTATION.values()]
        policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["appsync:GraphQL"], "Resource": fields}]}
        return self.ensure_role(self.events_role_name, "events.amazonaws.com", policy)

    def ensure_bus_rules(self, api: dict[str, Any], schema: Any) -> None:
        events = self.client("events")
        bus = self.settings.event_bus_name
        role_arn = self.ensure_events_role(api)
        for spec in bus_targets(schema):
            name = self.bus_rule_name(spec.detail_type)
            pattern = spec.pattern
            try:
                current = events.describe_rule(Name=name, EventBusName=bus)
            except events.exceptions.ResourceNotFoundException:
                current = None
            if current is None or json.loads(current.get("EventPattern", "{}")) != pattern:
                events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern), State="ENABLED",
                                Tags=[{"Key": k, "Value": v} for k, v in self.tags().items()])
                self.changes.record("created" if current is None else "updated", "rule", name)
            else:
                self.changes.record("unchanged", "rule", name)
            target = spec.target(self.endpoint_arn(api), role_arn)
            have = {t["Id"]: t for t in events.list_targets_by_rule(Rule=name, EventBusName=bus)["Targets"]}
            label = f"{name} -> {spec.mutation}"
            if have.get("appsync") == target:
                self.changes.record("unchanged", "rule target", label)
            else:
                events.put_targets(Rule=name, EventBusName=bus, Targets=[target])
                self.changes.record("updated" if "appsync" in have else "created", "rule target", label)

    # -- all -----------------------------------------------------------------------------
    def apply(self) -> dict[str, Any]:
        from graphql import build_schema

        from appsync.prelude import APPSYNC_PRELUDE

        schema = build_schema(APPSYNC_PRELUDE + self.schema_text)  # fail before touching AWS if it does not parse
        api = self.ensure_api()
        self.ensure_authorizer_permission(api)
        self.ensure_api_key(api)
        self.ensure_schema(api)
        role_arn = self.ensure_datasource_role()
        self.ensure_data_sources(api, role_arn)
        self.ensure_resolvers(api)
        self.ensure_bus_rules(api, schema)
        return api

    def teardown(self) -> None:
        events = self.client("events")
        bus = self.settings.event_bus_name
        for detail_type in BUS_TO_MUTATION:
            delete_rule(events, self.bus_rule_name(detail_type), bus, self.changes)
        api = self.find_api()
        if api is not None:
            self.client("appsync").delete_graphql_api(apiId=api["apiId"])  # data sources, resolvers, keys go too
            self.changes.record("deleted", "graphql api", self.api_name)
        self._teardown_permission()
        for role in (self.events_role_name, self.datasource_role_name):
            self._delete_role(role)

    def _teardown_permission(self) -> None:
        function = self.functions.get("authorizer")
        if function and self._permission_statement(function) is not None:
            self.client("lambda").remove_permission(FunctionName=function, StatementId=self.permission_sid)
            self.changes.record("deleted", "lambda permission", "authorizer <- appsync")

    def _delete_role(self, name: str) -> None:
        iam = self.client("iam")
        try:
            tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=name).get("Tags", [])}
        except iam.exceptions.NoSuchEntityException:
            return
        if tags.get(MANAGED_TAG) != MANAGED_VALUE:
            return  # same name, not ours: leave it
        for policy in iam.list_role_policies(RoleName=name).get("PolicyNames", []):
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        iam.delete_role(RoleName=name)
        self.changes.record("deleted", "iam role", name)


def _masked(key_id: str) -> str:
    """The API key id *is* the key: print only enough to tell keys apart."""
    return f"{key_id[:6]}..."


def _source_arn(statement: dict[str, Any]) -> str | None:
    condition = statement.get("Condition", {}).get("ArnLike", {})
    return condition.get("AWS:SourceArn") or condition.get("aws:SourceArn")


def _same(current: Any, desired: Any) -> bool:
    """``desired`` is a subset of ``current`` (AWS echoes extra defaults back)."""
    if isinstance(desired, dict):
        return isinstance(current, dict) and all(_same(current.get(k), v) for k, v in desired.items())
    if isinstance(desired, list):
        return (isinstance(current, list) and len(current) == len(desired)
                and all(_same(c, d) for c, d in zip(current, desired, strict=True)))
    return current == desired
