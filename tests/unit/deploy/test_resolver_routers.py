"""Each resolver Lambda's router serves the fields appsync/resolvers.json sends it, with the schema's arguments."""

from __future__ import annotations

import pytest

from chalicelib.auth.graphql import router as auth
from chalicelib.billing.graphql import router as billing
from chalicelib.ocm.graphql import router as stations
from devstack.gateway import load_resolver_map, load_schema

ROUTERS = {"auth_resolver": auth, "billing_resolver": billing, "stations_resolver": stations}


@pytest.mark.parametrize("function", sorted(ROUTERS))
def test_the_router_serves_the_fields_appsync_sends_to_its_function(function):
    sent = {key for key, target in load_resolver_map()["resolvers"].items() if target == function}
    assert ROUTERS[function].fields == sent


@pytest.mark.parametrize("function", sorted(ROUTERS))
def test_each_field_declares_the_arguments_of_the_schema(function):
    schema = load_schema()
    for key in ROUTERS[function].fields:
        type_name, field_name = key.split(".")
        declared = set(schema.get_type(type_name).fields[field_name].args)
        assert ROUTERS[function].arguments_of(type_name, field_name) == declared, key


def test_a_router_knows_no_field_it_was_not_given():
    assert billing.arguments_of("Query", "me") is None and auth.arguments_of("Query", "wallet") is None
