"""``chalicelib.resolvers``: one router per domain, refusals decided once, errors untouched, calls kept apart."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from chalicelib.contracts.errors import NotFound, ValidationError
from chalicelib.resolvers import DomainRouter, current_call, serve

router = DomainRouter("test")
barrier = threading.Barrier(2, timeout=10)


@router.resolver(type_name="Query", field_name="echo")
def echo(text: Any = None, wait: Any = False) -> dict[str, Any]:
    if wait:
        barrier.wait()  # both calls are inside a field function at once, then read their call
    call = current_call()
    return {"text": text, "caller": call.caller.get("userId"), "deps": call.deps, "request": call.request_id}


@router.resolver(type_name="Query", field_name="missing")
def missing() -> None:
    raise NotFound("No such thing.")


def event(field: str, arguments: Any = None, caller: str | None = None, parent: str = "Query") -> dict[str, Any]:
    return {"arguments": arguments, "identity": {"resolverContext": {"userId": caller}} if caller else None,
            "info": {"fieldName": field, "parentTypeName": parent}}


class Context:
    aws_request_id = "req-7"


def test_the_field_gets_its_arguments_caller_deps_and_request_id():
    out = serve(router, event("echo", {"text": "hi"}, "u-1"), Context(), lambda: "ports")
    assert out == {"text": "hi", "caller": "u-1", "deps": "ports", "request": "req-7"}


def test_an_unknown_field_is_refused_before_the_deps_are_built():
    def deps():
        raise AssertionError("built for a field nobody serves")

    for refused in (event("wallet"), event("echo", parent="Mutation"), {"arguments": {}}, None, [event("echo")]):
        with pytest.raises(ValidationError, match="The test resolver does not serve this field.") as raised:
            serve(router, refused, Context(), deps)
        assert raised.value.details == {"fieldName": "unknown"}


def test_an_undeclared_argument_is_refused_without_repeating_its_name():
    with pytest.raises(ValidationError) as raised:
        serve(router, event("echo", {"text": "x", "password=hunter2": 1}), Context(), lambda: None)
    assert raised.value.details == {"arguments._unknown": "Unknown field."}
    assert "hunter2" not in raised.value.message
    with pytest.raises(ValidationError, match="arguments: must be an object"):
        serve(router, event("echo", ["x"]), Context(), lambda: None)


def test_errors_reach_appsync_as_raised_so_the_class_name_is_the_error_type():
    with pytest.raises(NotFound) as raised:
        serve(router, event("missing", {}), Context(), lambda: None)
    assert raised.value.error_type == "NotFound"


def test_concurrent_calls_in_one_process_each_see_their_own_caller():
    """The local stack's server resolves in threads of one process; Powertools' current_event is shared there."""
    results: dict[str, Any] = {}

    def call(user: str) -> None:
        results[user] = serve(router, event("echo", {"text": user, "wait": True}, user), Context(), lambda: user)

    threads = [threading.Thread(target=call, args=(user,)) for user in ("alice", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert {user: (r["text"], r["caller"], r["deps"]) for user, r in results.items()} == {
        "alice": ("alice", "alice", "alice"), "bob": ("bob", "bob", "bob")}
