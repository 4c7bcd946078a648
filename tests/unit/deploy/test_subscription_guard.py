"""The subscription guard the deploy step installs, evaluated by a Velocity engine (airspeed).

The same template text is what the local real-time endpoint renders on every
``start``, so these cases are the rule in AWS and locally alike.
"""

from __future__ import annotations

import pytest

from appsync.appsync_api import AppSyncApi
from appsync.subscriptions import GUARDED_SUBSCRIPTIONS, SUBSCRIPTION_GUARD_REQUEST
from devstack.realtime import GUARD_TEMPLATES
from devstack.vtl import Unauthorized, render_request

CALLER = "0b1732fa-631a-4952-b6d6-2d586ed9dbf8"
OTHER = "6fe27f6e-ff2d-4dda-9f86-3de70e1a4bbf"


def test_the_caller_may_subscribe_to_their_own_user_id():
    rendered = render_request(SUBSCRIPTION_GUARD_REQUEST, {"userId": CALLER}, {"resolverContext": {"userId": CALLER}})
    assert rendered == {"version": "2018-05-29", "payload": {}}


@pytest.mark.parametrize("identity", [
    {"resolverContext": {"userId": OTHER}},  # another user
    {"resolverContext": None},  # an authorizer that returned no context
    {},  # IAM or API key: no resolverContext at all
    None,  # no identity
], ids=["another user", "no resolver context", "not a Lambda identity", "no identity"])
def test_anyone_else_is_refused(identity):
    with pytest.raises(Unauthorized):
        render_request(SUBSCRIPTION_GUARD_REQUEST, {"userId": CALLER}, identity)


def test_no_directive_is_glued_to_the_next_token():
    # AppSync's Velocity parser refused "#end{"; keep every directive on a line of its own.
    for directive in ("#if", "#end"):
        assert directive in SUBSCRIPTION_GUARD_REQUEST
    assert "#end{" not in SUBSCRIPTION_GUARD_REQUEST
    assert "#end\n" in SUBSCRIPTION_GUARD_REQUEST


def test_the_deploy_step_and_the_local_endpoint_run_the_same_template():
    from chalicelib.sections import load_stage_settings

    api = AppSyncApi(lambda name: None, load_stage_settings({}), None, {}, {"resolvers": {}}, "")  # type: ignore[arg-type]
    deployed = {path: spec["requestMappingTemplate"] for path, spec in api.desired_resolvers().items()
                if path.startswith("Subscription.")}
    assert deployed == GUARD_TEMPLATES == {path: SUBSCRIPTION_GUARD_REQUEST for path in GUARDED_SUBSCRIPTIONS}
