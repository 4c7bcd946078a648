"""AppSync data sources and resolvers: exact requests, asserted with botocore's Stubber.

moto 5.2.5 does not implement GetDataSource/CreateDataSource/UpdateDataSource or
GetResolver/CreateResolver/UpdateResolver (its server answers 404), so these
requests are proven only against the botocore service model here, not against
a running AppSync stand-in.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from appsync.appsync_api import AppSyncApi
from appsync.bus_to_api import endpoint_arn
from appsync.data_sources import NONE_DATA_SOURCE, NONE_REQUEST_TEMPLATE, NONE_RESPONSE_TEMPLATE
from appsync.infra import Changes
from appsync.subscriptions import GUARDED_SUBSCRIPTIONS
from chalicelib.sections import load_stage_settings

ROOT = Path(__file__).resolve().parents[3]
RESOLVERS = json.loads((ROOT / "appsync" / "resolvers.json").read_text())
ARN = "arn:aws:lambda:eu-central-1:123456789012:function:jucr-dev-{}"
FUNCTIONS = {name: ARN.format(name) for name in ("authorizer", "auth_resolver", "billing_resolver",
                                                  "stations_resolver")}
API = {"apiId": "api123", "arn": "arn:aws:appsync:eu-central-1:123456789012:apis/api123",
       "uris": {"GRAPHQL": "https://abcdefghij.appsync-api.eu-central-1.amazonaws.com/graphql"}}
ROLE = "arn:aws:iam::123456789012:role/jucr-dev-appsync-datasources"


@pytest.fixture
def stubbed():
    client = boto3.client("appsync", region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x")
    settings = load_stage_settings({"JUCR_STAGE": "dev", "EVENT_BUS_NAME": "jucr-dev"})
    changes = Changes()
    api = AppSyncApi(lambda name: client, settings, changes, FUNCTIONS, RESOLVERS,
                     (ROOT / "appsync" / "schema.graphql").read_text())
    with Stubber(client) as stub:
        yield api, stub, changes
        stub.assert_no_pending_responses()


def _lambda_source(name: str) -> dict:
    return {"type": "AWS_LAMBDA", "serviceRoleArn": ROLE, "lambdaConfig": {"lambdaFunctionArn": ARN.format(name)}}


def test_data_sources_created_one_per_resolver_function_plus_none(stubbed):
    api, stub, changes = stubbed
    for name in ("auth_resolver", "billing_resolver", "stations_resolver"):
        stub.add_client_error("get_data_source", "NotFoundException", expected_params={"apiId": "api123",
                                                                                       "name": name})
        stub.add_response("create_data_source", {"dataSource": {"name": name}},
                          {"apiId": "api123", "name": name, **_lambda_source(name)})
    stub.add_client_error("get_data_source", "NotFoundException",
                          expected_params={"apiId": "api123", "name": NONE_DATA_SOURCE})
    stub.add_response("create_data_source", {"dataSource": {"name": NONE_DATA_SOURCE}},
                      {"apiId": "api123", "name": NONE_DATA_SOURCE, "type": "NONE"})
    api.ensure_data_sources(API, ROLE)
    assert [a for a, _, _ in changes.lines] == ["created"] * 4


def test_data_sources_unchanged_or_updated_when_the_function_moves(stubbed):
    api, stub, changes = stubbed
    stub.add_response("get_data_source", {"dataSource": {"name": "auth_resolver", **_lambda_source("auth_resolver"),
                                                         "dataSourceArn": "arn:x"}},
                      {"apiId": "api123", "name": "auth_resolver"})
    moved = dict(_lambda_source("billing_resolver"), lambdaConfig={"lambdaFunctionArn": "arn:old"})
    stub.add_response("get_data_source", {"dataSource": {"name": "billing_resolver", **moved}},
                      {"apiId": "api123", "name": "billing_resolver"})
    stub.add_response("update_data_source", {"dataSource": {"name": "billing_resolver"}},
                      {"apiId": "api123", "name": "billing_resolver", **_lambda_source("billing_resolver")})
    stub.add_response("get_data_source", {"dataSource": {"name": "stations_resolver",
                                                         **_lambda_source("stations_resolver")}},
                      {"apiId": "api123", "name": "stations_resolver"})
    stub.add_response("get_data_source", {"dataSource": {"name": NONE_DATA_SOURCE, "type": "NONE"}},
                      {"apiId": "api123", "name": NONE_DATA_SOURCE})
    api.ensure_data_sources(API, ROLE)
    assert [a for a, _, _ in changes.lines] == ["unchanged", "updated", "unchanged", "unchanged"]


def _expected_resolvers() -> list[tuple[str, str, dict]]:
    out = []
    for path, function in sorted(RESOLVERS["resolvers"].items()):
        type_name, field = path.split(".")
        if function == "NONE":
            extra = {"dataSourceName": NONE_DATA_SOURCE, "kind": "UNIT",
                     "requestMappingTemplate": NONE_REQUEST_TEMPLATE,
                     "responseMappingTemplate": NONE_RESPONSE_TEMPLATE}
        else:
            extra = {"dataSourceName": function, "kind": "UNIT"}  # direct Lambda: no templates
        out.append((type_name, field, extra))
    return out


def test_resolvers_are_direct_lambda_and_publish_mutations_use_none(stubbed):
    api, stub, changes = stubbed
    for type_name, field, extra in _expected_resolvers():
        key = {"apiId": "api123", "typeName": type_name, "fieldName": field}
        stub.add_client_error("get_resolver", "NotFoundException", expected_params=key)
        stub.add_response("create_resolver", {"resolver": {"fieldName": field}}, {**key, **extra})
    for path in GUARDED_SUBSCRIPTIONS:
        type_name, field = path.split(".")
        key = {"apiId": "api123", "typeName": type_name, "fieldName": field}
        stub.add_client_error("get_resolver", "NotFoundException", expected_params=key)
        request = api.desired_resolvers()[path]
        assert "resolverContext.userId != $context.arguments.userId" in request["requestMappingTemplate"]
        stub.add_response("create_resolver", {"resolver": {"fieldName": field}}, {**key, **request})
    api.ensure_resolvers(API)
    assert len(changes.lines) == len(RESOLVERS["resolvers"]) + len(GUARDED_SUBSCRIPTIONS)
    assert {a for a, _, _ in changes.lines} == {"created"}


def test_resolver_with_leftover_template_is_updated_to_direct_lambda(stubbed):
    api, stub, changes = stubbed
    for type_name, field, extra in _expected_resolvers():
        key = {"apiId": "api123", "typeName": type_name, "fieldName": field}
        current = dict(extra, typeName=type_name, fieldName=field)
        if (type_name, field) == ("Query", "wallet"):
            current["requestMappingTemplate"] = "{}"  # somebody added a VTL template by hand
        stub.add_response("get_resolver", {"resolver": current}, key)
        if (type_name, field) == ("Query", "wallet"):
            stub.add_response("update_resolver", {"resolver": {"fieldName": field}}, {**key, **extra})
    for path in GUARDED_SUBSCRIPTIONS:
        type_name, field = path.split(".")
        key = {"apiId": "api123", "typeName": type_name, "fieldName": field}
        stub.add_response("get_resolver", {"resolver": dict(api.desired_resolvers()[path], fieldName=field)}, key)
    api.ensure_resolvers(API)
    updated = [name for action, _, name in changes.lines if action == "updated"]
    assert updated == ["Query.wallet"]


def test_endpoint_arn_uses_the_graphql_host_label():
    assert endpoint_arn(API) == "arn:aws:appsync:eu-central-1:123456789012:endpoints/graphql-api/abcdefghij"
