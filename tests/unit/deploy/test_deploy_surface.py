"""The schema, the resolver map and app.py cannot drift apart without a failure here."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from graphql import build_schema, get_named_type, is_object_type

from appsync.prelude import APPSYNC_PRELUDE
from appsync.subscriptions import BUS_TO_MUTATION, bus_targets

ROOT = Path(__file__).resolve().parents[3]
SCHEMA_TEXT = (ROOT / "appsync" / "schema.graphql").read_text()
SCHEMA = build_schema(APPSYNC_PRELUDE + SCHEMA_TEXT)
RESOLVERS = json.loads((ROOT / "appsync" / "resolvers.json").read_text())
AUTH_DIRECTIVES = {"aws_api_key", "aws_iam", "aws_lambda", "aws_auth"}


def app_function_names() -> set[str]:
    """Every ``name=`` given to an ``@app.<decorator>(...)`` in app.py, conditional ones included."""
    tree = ast.parse((ROOT / "app.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call):
                    names.update(kw.value.value for kw in deco.keywords
                                 if kw.arg == "name" and isinstance(kw.value, ast.Constant))
    return names


def test_app_declares_the_expected_functions():
    assert {"authorizer", "auth_resolver", "billing_resolver", "stations_resolver"} <= app_function_names()


def test_every_resolver_names_a_function_in_app_py():
    functions = app_function_names()
    assert RESOLVERS["authorizer"] in functions
    for path, function in RESOLVERS["resolvers"].items():
        assert function == "NONE" or function in functions, path


@pytest.mark.parametrize("type_name", ["Query", "Mutation"])
def test_every_query_and_mutation_field_has_a_resolver(type_name):
    fields = getattr(SCHEMA, f"{type_name.lower()}_type").fields
    missing = [f"{type_name}.{name}" for name in fields if f"{type_name}.{name}" not in RESOLVERS["resolvers"]]
    assert missing == []


def test_every_resolver_entry_is_a_schema_field():
    for path in RESOLVERS["resolvers"]:
        type_name, field = path.split(".")
        assert field in SCHEMA.get_type(type_name).fields, path


def _directives(ast_node) -> set[str]:
    return {d.name.value for d in (ast_node.directives or [])}


def test_auth_directives_match_the_resolver_map():
    mutation = SCHEMA.mutation_type
    for path in RESOLVERS["public_fields"]:
        assert "aws_api_key" in _directives(mutation.fields[path.split(".")[1]].ast_node), path
    for path in RESOLVERS["iam_fields"]:
        field = mutation.fields[path.split(".")[1]]
        assert _directives(field.ast_node) == {"aws_iam"}, path
        assert RESOLVERS["resolvers"][path] == "NONE"


def test_types_with_an_auth_directive_stay_readable_with_the_default_lambda_mode():
    # In AppSync a type-level auth directive replaces the default mode, so a type
    # returned to Lambda-authorized callers (me, subscriptions) must list @aws_lambda.
    for name, graphql_type in SCHEMA.type_map.items():
        if is_object_type(graphql_type) and graphql_type.ast_node and name not in ("Query", "Mutation"):
            directives = _directives(graphql_type.ast_node) & AUTH_DIRECTIVES
            assert not directives or "aws_lambda" in directives, name


def test_bus_targets_are_derived_from_the_schema_and_render_valid_json():
    targets = {t.detail_type: t for t in bus_targets(SCHEMA)}
    assert set(targets) == set(BUS_TO_MUTATION)
    ocm = targets["OCM_SYNC_COMPLETED"]
    assert ocm.input_paths["processed"] == "$.detail.processed"
    # EventBridge replaces <name> with the value; strings are quoted in the template, numbers are not.
    rendered = ocm.input_template
    for name in ocm.input_paths:
        rendered = rendered.replace(f"<{name}>", "7" if name in ("processed", "updated", "failed") else "x")
    assert json.loads(rendered)["input"] == {"startedAt": "x", "finishedAt": "x", "processed": 7, "updated": 7,
                                             "failed": 7}
    invoice = targets["INVOICE_GENERATED"]
    mutation = SCHEMA.mutation_type.fields["publishInvoiceGenerated"]
    returned = get_named_type(mutation.type).fields
    assert all(name in invoice.operation for name in returned)
    input_type = get_named_type(mutation.args["input"].type)
    assert set(invoice.input_paths) == set(input_type.fields)


def test_subscriptions_fire_from_the_publish_mutations():
    subscribed = set()
    for field in SCHEMA.subscription_type.fields.values():
        for directive in field.ast_node.directives:
            if directive.name.value == "aws_subscribe":
                subscribed.update(v.value for v in directive.arguments[0].value.values)
    assert subscribed == set(BUS_TO_MUTATION.values())
