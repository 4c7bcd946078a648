"""The AppSync half of the deploy step: API (with its limits and WAF), schema, data sources, resolvers.

Identity: the API is found by name (``<app>-<stage>``) *and* our tag, so we
never adopt or delete an API we did not make. Schema changes are detected by a
SHA-256 of ``schema.graphql`` kept in a tag (AppSync returns a re-generated SDL,
not what we uploaded, so text comparison cannot work).

Each concern has its module: the request limits (``appsync.limits``), the web ACL
(``appsync.waf``), data sources and resolvers (``appsync.data_sources``), the bus ->
AppSync rules (``appsync.bus_to_api``) and the roles (``appsync.roles``); this class
holds the names and runs them in order.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from appsync import bus_to_api, data_sources
from appsync.drift import same
from appsync.infra import Changes, delete_rule
from appsync.limits import api_limits
from appsync.roles import delete_role, ensure_role
from appsync.subscriptions import BUS_TO_MUTATION, bus_rule_name
from appsync.waf import WebAcl
from chalicelib.sections import StageSettings

MANAGED_TAG = "jucr:managed-by"
MANAGED_VALUE = "appsync.deploy"
SCHEMA_TAG = "jucr:schema-sha256"
API_KEY_DESCRIPTION = "jucr public key (register/login/refreshToken)"
API_KEY_DAYS = 365
API_KEY_RENEW_DAYS = 30


def schema_sha(schema_text: str) -> str:
    return hashlib.sha256(schema_text.encode()).hexdigest()


class AppSyncApi:
    """Provisioner for the GraphQL API, bound to boto3 clients (appsync, wafv2, lambda, iam, events)."""

    def __init__(self, clients: Callable[[str], Any], settings: StageSettings, changes: Changes,
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
        self.prefix = settings.core.prefix

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
    def web_acl_name(self) -> str:
        return f"{self.prefix}-api"

    @property
    def permission_sid(self) -> str:
        return f"{self.prefix}-appsync-authorizer"

    def bus_rule_name(self, detail_type: str) -> str:
        return bus_rule_name(self.prefix, detail_type)

    def tags(self) -> dict[str, str]:
        return {MANAGED_TAG: MANAGED_VALUE, "jucr:stage": self.settings.core.stage}

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
                "authorizerResultTtlInSeconds": self.settings.authorizer.jwt_authorizer_cache_seconds,
            },
            "additionalAuthenticationProviders": [{"authenticationType": "API_KEY"},
                                                  {"authenticationType": "AWS_IAM"}],
            **api_limits(self.settings.core.stage),  # depth, resolver count, introspection off in prod
        }

    def ensure_api(self) -> dict[str, Any]:
        appsync = self.client("appsync")
        desired = self.desired_api()
        api = self.find_api()
        if api is None:
            api = appsync.create_graphql_api(name=self.api_name, tags=self.tags(), **desired)["graphqlApi"]
            self.changes.record("created", "graphql api", self.api_name)
        elif not same(api, desired):
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
        return ensure_role(self.client("iam"), name, service, policy, self.tags(), self.changes)

    def ensure_datasource_role(self) -> str:
        functions = data_sources.lambda_functions_used(self.resolver_map)
        policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["lambda:InvokeFunction"],
             "Resource": sorted(self.functions[fn] for fn in functions)}]}
        return self.ensure_role(self.datasource_role_name, "appsync.amazonaws.com", policy)

    # -- data sources + resolvers --------------------------------------------------------
    def ensure_data_sources(self, api: dict[str, Any], role_arn: str) -> None:
        desired = data_sources.desired_data_sources(self.resolver_map, self.functions, role_arn)
        data_sources.ensure_data_sources(self.client("appsync"), api["apiId"], desired, self.changes)

    def desired_resolvers(self) -> dict[str, dict[str, Any]]:
        return data_sources.desired_resolvers(self.resolver_map)

    def ensure_resolvers(self, api: dict[str, Any]) -> None:
        data_sources.ensure_resolvers(self.client("appsync"), api["apiId"], self.desired_resolvers(), self.changes)

    # -- WAF and bus -> AppSync ----------------------------------------------------------
    def web_acl(self) -> WebAcl:
        return WebAcl(self.client("wafv2"), self.web_acl_name, self.tags(), self.changes, self.sleep)

    def ensure_waf(self, api: dict[str, Any]) -> None:
        acl = self.web_acl()
        acl.ensure_association(acl.ensure(), api)

    def ensure_bus_rules(self, api: dict[str, Any], schema: Any) -> None:
        role_arn = self.ensure_role(self.events_role_name, "events.amazonaws.com", bus_to_api.events_role_policy(api))
        bus_to_api.ensure_bus_rules(self.client("events"), api, schema, self.settings.core.event_bus_name, self.prefix,
                                    role_arn, self.tags(), self.changes)

    # -- all -----------------------------------------------------------------------------
    def apply(self) -> dict[str, Any]:
        from graphql import build_schema

        from appsync.prelude import APPSYNC_PRELUDE

        schema = build_schema(APPSYNC_PRELUDE + self.schema_text)  # fail before touching AWS if it does not parse
        api = self.ensure_api()
        self.ensure_waf(api)
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
        bus = self.settings.core.event_bus_name
        for detail_type in BUS_TO_MUTATION:
            delete_rule(events, self.bus_rule_name(detail_type), bus, self.changes)
        api = self.find_api()
        self.web_acl().teardown(api)  # disassociated before the API goes
        if api is not None:
            self.client("appsync").delete_graphql_api(apiId=api["apiId"])  # data sources, resolvers, keys go too
            self.changes.record("deleted", "graphql api", self.api_name)
        self._teardown_permission()
        for role in (self.events_role_name, self.datasource_role_name):
            delete_role(self.client("iam"), role, (MANAGED_TAG, MANAGED_VALUE), self.changes)

    def _teardown_permission(self) -> None:
        function = self.functions.get("authorizer")
        if function and self._permission_statement(function) is not None:
            self.client("lambda").remove_permission(FunctionName=function, StatementId=self.permission_sid)
            self.changes.record("deleted", "lambda permission", "authorizer <- appsync")


def _masked(key_id: str) -> str:
    """The API key id *is* the key: print only enough to tell keys apart."""
    return f"{key_id[:6]}..."


def _source_arn(statement: dict[str, Any]) -> str | None:
    condition = statement.get("Condition", {}).get("ArnLike", {})
    return condition.get("AWS:SourceArn") or condition.get("aws:SourceArn")
