"""One request cannot ask for too much: query depth, resolver count, introspection off in prod.

Before: the local gateway (and AppSync, with no limits set) ran a request that aliased
``login`` 1,000 times, each alias its own password check, past any per-request rate
limit. Now the gateway refuses it with the same limits the deploy step sets on AppSync
(``appsync/limits.py``), before any resolver or authorizer runs. The deploy step's half
is proven on moto in ``tests/integration/deploy/test_api_limits_moto.py``.
"""

from __future__ import annotations

import uuid

import pytest

from appsync.limits import QUERY_DEPTH_LIMIT, RESOLVER_COUNT_LIMIT
from chalicelib.sections import load_stage_settings
from devstack.gateway import Gateway

DEFAULTS = load_stage_settings({})
TOKENS = "{ accessToken }"
LOGIN = f"mutation L($i: LoginInput!) {{ login(input: $i) {TOKENS} }}"
REGISTER = f"mutation R($i: RegisterInput!) {{ register(input: $i) {TOKENS} }}"
INTROSPECTION = "{ __schema { queryType { name } } }"


def aliased_logins(count: int) -> str:
    return "mutation L($i: LoginInput!) { " + " ".join(f"a{n}: login(input: $i) {TOKENS}" for n in range(count)) + " }"


def too_deep(levels: int) -> str:
    """The only deep queries this schema allows: introspection's ``ofType`` chain (3 levels before it)."""
    chain = levels - 3
    return '{ __type(name: "Query") { fields { type { ' + "ofType { " * (chain - 1) + "name" + " }" * (chain - 1) + \
        " } } } }"


def _refusal(status: int, body: dict) -> str:
    assert status == 400 and "data" not in body, body
    [error] = body["errors"]
    assert error["errorType"] == "ValidationError"
    return error["message"]


# --- in process: nothing is invoked -------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, name: str, event: dict) -> dict:
        self.calls.append(name)
        return {"accessToken": "t"}


def test_an_aliased_login_flood_invokes_nothing():
    invoked = Recorder()
    gateway = Gateway(invoked, stage="dev")
    message = _refusal(*gateway.handle({"query": aliased_logins(1000), "variables": {"i": {}}}, None))
    assert f"resolverCountLimit: {RESOLVER_COUNT_LIMIT}" in message and "a999" not in message
    assert invoked.calls == []
    status, body = gateway.handle({"query": aliased_logins(RESOLVER_COUNT_LIMIT),
                                   "variables": {"i": {"email": "x@example.com", "password": "p" * 10}}}, None)
    assert status == 200 and len(invoked.calls) == RESOLVER_COUNT_LIMIT  # at the limit is allowed


@pytest.mark.parametrize(("stage", "allowed"), [("prod", False), ("dev", True), ("local", True)])
def test_introspection_is_refused_in_prod_only(stage, allowed):
    gateway = Gateway(Recorder(), stage=stage)
    status, body = gateway.handle({"query": INTROSPECTION}, None)
    if allowed:
        assert status == 200 and body["data"]["__schema"]["queryType"]["name"] == "Query"
    else:
        assert "introspectionConfig: DISABLED" in _refusal(status, body)
    assert gateway.handle({"query": "{ __typename }"}, None) == (200, {"data": {"__typename": "Query"}})


# --- on the local stack ---------------------------------------------------------------------


@pytest.mark.e2e
def test_an_aliased_login_flood_is_refused_without_running_a_single_login(local_stack):
    email = f"flood.{uuid.uuid4().hex[:10]}@example.com"
    password = "correct horse battery"
    status, body = local_stack.graphql(REGISTER, {"i": {"email": email, "name": "Flo Od", "password": password,
                                                        "vehicle": {"brand": "VW", "model": "ID.3",
                                                                    "batteryCapacity": 58}}})
    assert status == 200 and "errors" not in body, body
    wrong = {"i": {"email": email, "password": "wrong guess, 1,000 times"}}
    message = _refusal(*local_stack.graphql(aliased_logins(1000), wrong))
    assert "resolverCountLimit" in message and "wrong guess" not in message
    # Had even one alias run, these would make LOGIN_FREE_FAILURES failures and the next attempt would wait.
    for _ in range(DEFAULTS.auth.login_free_failures - 1):
        status, body = local_stack.graphql(LOGIN, wrong)
        assert body["errors"][0]["errorType"] == "Unauthorized", body
    status, body = local_stack.graphql(LOGIN, {"i": {"email": email, "password": password}})
    assert status == 200 and body["data"]["login"]["accessToken"], body  # a normal request still works


@pytest.mark.e2e
def test_a_too_deep_query_is_refused_and_one_at_the_limit_runs(local_stack):
    message = _refusal(*local_stack.graphql(too_deep(QUERY_DEPTH_LIMIT + 1)))
    assert f"queryDepthLimit: {QUERY_DEPTH_LIMIT}" in message
    status, body = local_stack.graphql(too_deep(QUERY_DEPTH_LIMIT))
    assert status == 200 and body["data"]["__type"]["fields"], body
