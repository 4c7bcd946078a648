"""On the running local stack, the owner signs in while an attacker guesses their password.

Before: the local gateway never told the resolvers who called, so every local sign-in
had no source and the throttle fell back to the email alone: an attacker's guesses
delayed the owner too, and the stack could not show the per-source rule at all. Now
the gateway builds ``x-forwarded-for`` as AppSync does (what the client wrote, then the
TCP peer, then the edge), so the attacker's address is delayed, a forged
``X-Forwarded-For`` does not move its guesses to a fresh count (nor to the owner's), and
the owner at another address signs in at once.
"""

from __future__ import annotations

import pytest

from tests.e2e.test_auth_flows import DEFAULTS, LOGIN, error_of, graphql_from, register, retry_after, seed_payload

pytestmark = pytest.mark.e2e

# Loopback addresses of their own (all of 127/8 is lo on Linux), so other tests' failures
# from 127.0.0.1 and this attack never share a per-source count.
ATTACKER = "127.0.0.4"
OWNER = "127.0.0.5"
FORGED = (OWNER, "127.0.0.1", f"{OWNER}, 127.0.0.1", "203.0.113.7, 198.51.100.9, 127.0.0.1")


def test_owner_signs_in_while_an_attacker_is_delayed(local_stack):
    payload = seed_payload()
    registered = register(local_stack, payload)
    guess = {"input": {"email": payload["email"], "password": "hunter2hunter2"}}
    free = DEFAULTS.auth.login_free_failures
    outcomes = [error_of(graphql_from(local_stack, ATTACKER, LOGIN, guess)[1])["errorType"] for _ in range(free)]
    assert outcomes == ["Unauthorized"] * free

    for forged in FORGED:  # the owner's address, the default client's, whole AWS-shaped chains
        status, body = graphql_from(local_stack, ATTACKER, LOGIN, guess, {"X-Forwarded-For": forged})
        assert 0 < retry_after(error_of(body)) <= DEFAULTS.auth.login_delay_base_seconds, forged

    status, body = graphql_from(local_stack, OWNER, LOGIN,
                                {"input": {"email": payload["email"], "password": payload["password"]}})
    assert status == 200 and "errors" not in body, body
    assert body["data"]["login"]["user"]["id"] == registered["user"]["id"]
