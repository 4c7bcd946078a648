"""The deploy step's request limits and WAF on moto (in process): what the API and the web ACL get.

moto's AppSync accepts ``queryDepthLimit``, ``resolverCountLimit`` and
``introspectionConfig`` (botocore validates them against the service model before
sending) but does not keep them, so ``FakeResolverStore`` records each request as sent
and echoes the fields back. moto's wafv2 implements web ACLs, their rules and
``associate_web_acl`` for any resource ARN, so the ACL and its association with the
GraphQL API are read back from moto itself.
"""

from __future__ import annotations

from functools import cache

import boto3
import pytest
from moto import mock_aws

from appsync.appsync_api import MANAGED_TAG, MANAGED_VALUE, AppSyncApi
from appsync.infra import Changes
from appsync.limits import QUERY_DEPTH_LIMIT, RESOLVER_COUNT_LIMIT, WAF_LOGIN_RATE_LIMIT, WAF_RATE_LIMIT
from appsync.waf import SCOPE
from chalicelib.sections import load_stage_settings
from tests.integration.deploy.resolver_store import FakeResolverStore

AUTHORIZER = "arn:aws:lambda:eu-central-1:123456789012:function:jucr-{}-authorizer"


@pytest.fixture
def moto(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "eu-central-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


def provisioner(stage: str) -> tuple[AppSyncApi, FakeResolverStore, Changes]:
    @cache
    def client(name: str):
        real = boto3.client(name, region_name="eu-central-1")
        return FakeResolverStore(real) if name == "appsync" else real

    changes = Changes()
    settings = load_stage_settings({"JUCR_STAGE": stage, "EVENT_BUS_NAME": f"jucr-{stage}"})
    api = AppSyncApi(client, settings, changes, {"authorizer": AUTHORIZER.format(stage)}, {"resolvers": {}}, "",
                     sleep=lambda _s: None)
    return api, client("appsync"), changes


@pytest.mark.parametrize(("stage", "introspection"), [("prod", "DISABLED"), ("dev", "ENABLED")])
def test_the_api_gets_depth_and_resolver_limits_and_introspection_off_in_prod(moto, stage, introspection):
    api, appsync, _changes = provisioner(stage)
    made = api.ensure_api()
    [request] = appsync.api_requests
    limits = {"queryDepthLimit": QUERY_DEPTH_LIMIT, "resolverCountLimit": RESOLVER_COUNT_LIMIT,
              "introspectionConfig": introspection}
    assert {k: request[k] for k in limits} == limits
    assert appsync.get_graphql_api(apiId=made["apiId"])["graphqlApi"]["name"] == f"jucr-{stage}"  # moto has it
    assert QUERY_DEPTH_LIMIT <= 75 and RESOLVER_COUNT_LIMIT < 1000  # AppSync's range; a 1,000-alias flood fails


def test_an_api_made_without_limits_is_updated_to_them_once(moto):
    api, appsync, changes = provisioner("prod")
    appsync.create_graphql_api(name="jucr-prod", tags=api.tags(), **{
        k: v for k, v in api.desired_api().items() if k not in ("queryDepthLimit", "resolverCountLimit",
                                                                 "introspectionConfig")})
    appsync.api_fields.clear()  # as moto has it: no limits
    api.ensure_api()
    api.ensure_api()
    assert [action for action, kind, _ in changes.lines if kind == "graphql api"] == ["updated", "unchanged"]
    assert appsync.api_requests[-1]["introspectionConfig"] == "DISABLED"
    assert appsync.api_requests[-1]["queryDepthLimit"] == QUERY_DEPTH_LIMIT


def test_the_web_acl_has_the_rate_rules_and_is_associated_with_the_api(moto):
    api, _appsync, changes = provisioner("prod")
    made = api.ensure_api()
    api.ensure_waf(made)
    wafv2 = boto3.client("wafv2", region_name="eu-central-1")
    acl = wafv2.get_web_acl_for_resource(ResourceArn=made["arn"])["WebACL"]
    assert acl["Name"] == "jucr-prod-api" and acl["DefaultAction"] == {"Allow": {}}
    rules = {rule["Name"]: rule for rule in acl["Rules"]}
    sign_in = rules["sign-in-rate-per-ip"]["Statement"]["RateBasedStatement"]
    assert (sign_in["Limit"], sign_in["AggregateKeyType"]) == (WAF_LOGIN_RATE_LIMIT, "IP")
    assert sign_in["ScopeDownStatement"]["ByteMatchStatement"]["SearchString"] == b"login"
    everything = rules["rate-per-ip"]["Statement"]["RateBasedStatement"]
    assert (everything["Limit"], everything["AggregateKeyType"], "ScopeDownStatement" in everything) == (
        WAF_RATE_LIMIT, "IP", False)
    assert all(rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429 for rule in rules.values())
    tags = wafv2.list_tags_for_resource(ResourceARN=acl["ARN"])["TagInfoForResource"]["TagList"]
    assert {"Key": MANAGED_TAG, "Value": MANAGED_VALUE} in tags

    api.ensure_waf(made)  # a second run changes nothing
    waf_lines = [(action, kind) for action, kind, _ in changes.lines if kind.startswith("waf")]
    assert waf_lines == [("created", "waf web acl"), ("created", "waf association"),
                         ("unchanged", "waf web acl"), ("unchanged", "waf association")]

    api.web_acl().teardown(made)
    assert wafv2.get_web_acl_for_resource(ResourceArn=made["arn"]).get("WebACL") is None
    assert not [a for a in wafv2.list_web_acls(Scope=SCOPE)["WebACLs"] if a["Name"] == "jucr-prod-api"]


def test_a_web_acl_of_the_same_name_that_is_not_ours_is_refused_and_kept(moto):
    api, _appsync, _changes = provisioner("prod")
    wafv2 = boto3.client("wafv2", region_name="eu-central-1")
    visibility = {"SampledRequestsEnabled": False, "CloudWatchMetricsEnabled": False, "MetricName": "x"}
    wafv2.create_web_acl(Name="jucr-prod-api", Scope=SCOPE, DefaultAction={"Allow": {}}, Rules=[],
                         VisibilityConfig=visibility)
    with pytest.raises(RuntimeError, match="not made by this step"):
        api.web_acl().ensure()
    api.web_acl().teardown(None)
    assert [a["Name"] for a in wafv2.list_web_acls(Scope=SCOPE)["WebACLs"]] == ["jucr-prod-api"]
