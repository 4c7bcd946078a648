"""Auth end to end through ``/graphql`` on the local stack: the client's view of every rule."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import json
import re
import urllib.parse
import uuid

import jwt
import pytest

from chalicelib.auth.keys import DEV_KEY_DIR, KeyRing, dev_keyring
from chalicelib.sections import load_stage_settings

pytestmark = pytest.mark.e2e

USER_FIELDS = "user { id email name vehicle { brand model batteryCapacity } }"
REGISTER = f"mutation R($input: RegisterInput!) {{ register(input: $input) {{ accessToken refreshToken expiresIn " \
           f"{USER_FIELDS} }} }}"
LOGIN = f"mutation L($input: LoginInput!) {{ login(input: $input) {{ accessToken refreshToken expiresIn " \
        f"{USER_FIELDS} }} }}"
REFRESH = f"mutation F($token: String!) {{ refreshToken(token: $token) {{ accessToken refreshToken expiresIn " \
          f"{USER_FIELDS} }} }}"
ME = "query { me { id email name vehicle { brand model batteryCapacity } } }"
DEFAULTS = load_stage_settings({})
# Linux routes all of 127/8 to lo: a client socket bound to another loopback address is another
# caller to the stack (which listens on 127.0.0.1), and the default client is 127.0.0.1.
ATTACKER_ADDRESS = "127.0.0.2"


def seed_payload(tag: str | None = None) -> dict:
    """The register input of DESIGN.md, with a unique email (the stack is shared by the session)."""
    tag = tag or uuid.uuid4().hex[:10]
    return {"email": f"Driver.{tag}@Example.com", "name": "Dana Driver", "password": "correct horse battery",
            "vehicle": {"brand": "Volkswagen", "model": "ID.3", "batteryCapacity": 58.0}}


def register(stack, payload: dict) -> dict:
    status, body = stack.graphql(REGISTER, {"input": payload})
    assert status == 200 and "errors" not in body, body
    return body["data"]["register"]


def error_of(body: dict) -> dict:
    assert body.get("errors"), body
    return body["errors"][0]


def graphql_from(stack, address: str, query: str, variables: dict,
                 headers: dict[str, str] | None = None) -> tuple[int, dict]:
    """``POST /graphql`` from a socket bound to ``address``, so the stack sees that peer."""
    url = urllib.parse.urlsplit(stack.base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60, source_address=(address, 0))
    try:
        connection.request("POST", "/graphql", json.dumps({"query": query, "variables": variables}),
                           {"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def retry_after(error: dict) -> int:
    """The seconds a ``TooManyAttempts`` names (the client gets ``retryAfterSeconds`` in words)."""
    assert error["errorType"] == "TooManyAttempts", error
    found = re.search(r"Try again in (\d+) (second|minute)", error["message"])
    assert found, error["message"]
    return int(found[1]) * (60 if found[2] == "minute" else 1)


def test_register_login_me_refresh(local_stack):
    payload = seed_payload()
    registered = register(local_stack, payload)
    email = payload["email"].lower()
    assert registered["user"]["email"] == email
    assert registered["user"]["vehicle"] == {"brand": "Volkswagen", "model": "ID.3", "batteryCapacity": 58.0}
    assert registered["expiresIn"] == DEFAULTS.auth.jwt_access_ttl_seconds

    status, body = local_stack.graphql(LOGIN, {"input": {"email": f"  {payload['email'].upper()} ",
                                                         "password": payload["password"]}})
    assert status == 200 and body["data"]["login"]["user"]["id"] == registered["user"]["id"]
    access = body["data"]["login"]["accessToken"]

    status, body = local_stack.graphql(ME, token=access)
    assert status == 200 and body["data"]["me"] == registered["user"]

    status, body = local_stack.graphql(REFRESH, {"token": registered["refreshToken"]})
    rotated = body["data"]["refreshToken"]
    assert rotated["refreshToken"] != registered["refreshToken"]
    assert local_stack.graphql(ME, token=rotated["accessToken"])[1]["data"]["me"]["id"] == registered["user"]["id"]

    # the spent token is refused, and its reuse revokes the family (the rotated one dies too)
    status, body = local_stack.graphql(REFRESH, {"token": registered["refreshToken"]})
    assert error_of(body)["errorType"] == "Unauthorized"
    status, body = local_stack.graphql(REFRESH, {"token": rotated["refreshToken"]})
    assert error_of(body)["errorType"] == "Unauthorized"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"name": ""}, "name"),
        ({"password": "short"}, "password"),
        ({"vehicle": {"brand": "VW", "model": "ID.3", "batteryCapacity": 0}}, "vehicle.batteryCapacity"),
        ({"vehicle": {"brand": "VW", "model": "ID.3", "batteryCapacity": 9000}}, "vehicle.batteryCapacity"),
    ],
)
def test_register_rejections_name_the_field(local_stack, change, field):
    payload = {**seed_payload(), **change}
    status, body = local_stack.graphql(REGISTER, {"input": payload})
    err = error_of(body)
    assert err["errorType"] == "ValidationError" and field in err["message"]
    assert body["data"] is None
    # nothing was written: the same email can still register
    if "email" not in change:
        assert register(local_stack, {**seed_payload(), "email": payload["email"]})["user"]["id"]


def test_duplicate_email_is_a_conflict(local_stack):
    payload = seed_payload()
    register(local_stack, payload)
    status, body = local_stack.graphql(REGISTER, {"input": {**payload, "email": payload["email"].upper()}})
    err = error_of(body)
    assert err["errorType"] == "Conflict" and payload["email"].lower() not in err["message"].lower()


def test_wrong_password_and_unknown_email_look_the_same(local_stack):
    payload = seed_payload()
    register(local_stack, payload)
    attempt = {"email": payload["email"], "password": "nope nope nope"}
    wrong = error_of(local_stack.graphql(LOGIN, {"input": attempt})[1])
    unknown = error_of(local_stack.graphql(LOGIN, {"input": {"email": f"ghost.{uuid.uuid4().hex}@example.com",
                                                             "password": "nope nope nope"}})[1])
    assert wrong == unknown | {"path": wrong.get("path")}
    assert wrong["errorType"] == "Unauthorized"


def test_repeated_failures_delay_that_source_not_the_owner(local_stack):
    payload = seed_payload()
    registered = register(local_stack, payload)
    bad = {"input": {"email": payload["email"], "password": "wrong password!"}}
    good = {"input": {"email": payload["email"], "password": payload["password"]}}
    free = DEFAULTS.auth.login_free_failures
    types = [error_of(graphql_from(local_stack, ATTACKER_ADDRESS, LOGIN, bad)[1])["errorType"] for _ in range(free)]
    assert types == ["Unauthorized"] * free
    # from there the next attempt waits, even with the right password
    err = error_of(graphql_from(local_stack, ATTACKER_ADDRESS, LOGIN, good)[1])
    assert 0 < retry_after(err) <= DEFAULTS.auth.login_delay_base_seconds
    # the owner, at another address (the default client's 127.0.0.1), signs in at once
    status, body = local_stack.graphql(LOGIN, good)
    assert status == 200 and "errors" not in body, body
    assert body["data"]["login"]["user"]["id"] == registered["user"]["id"]


def _b64(data) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(user_id: str, **over) -> dict:
    now = int(dt.datetime.now(dt.UTC).timestamp())
    return {"iss": DEFAULTS.authorizer.jwt_issuer, "aud": DEFAULTS.authorizer.jwt_audience, "sub": user_id,
            "iat": now, "exp": now + 600, "jti": uuid.uuid4().hex, "ver": 0, **over}


def _bad_tokens(user_id: str, good: str) -> dict[str, str]:
    stack_key = dev_keyring(DEV_KEY_DIR)  # the same dev key the stack signs with
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(_claims(user_id))}"
    hs = _b64(hmac.new(stack_key.public_pem().encode(), signing_input.encode(), hashlib.sha256).digest())
    header, _, signature = good.split(".")
    past = int(dt.datetime.now(dt.UTC).timestamp()) - 3600
    return {
        "garbage": "garbage",
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(user_id))}.",
        "HS256 keyed with the public key": f"{signing_input}.{hs}",
        "another key": jwt.encode(_claims(user_id), KeyRing.generate().signing_key(), algorithm="EdDSA"),
        "expired": jwt.encode(_claims(user_id, iat=past, exp=past + 60), stack_key.signing_key(), algorithm="EdDSA"),
        "wrong iss": jwt.encode(_claims(user_id, iss="https://evil.example"), stack_key.signing_key(),
                                algorithm="EdDSA"),
        "wrong aud": jwt.encode(_claims(user_id, aud="other"), stack_key.signing_key(), algorithm="EdDSA"),
        "tampered payload": f"{header}.{_b64(_claims(str(uuid.uuid4())))}.{signature}",
    }


def test_me_is_refused_for_every_bad_token(local_stack):
    registered = register(local_stack, seed_payload())
    assert local_stack.graphql(ME, token=registered["accessToken"])[0] == 200  # the control: a good token works
    # and a token we sign with the dev key is accepted, so the refusals below are about the claim under test
    own = jwt.encode(_claims(registered["user"]["id"]), dev_keyring(DEV_KEY_DIR).signing_key(), algorithm="EdDSA")
    assert local_stack.graphql(ME, token=own)[1]["data"]["me"]["id"] == registered["user"]["id"]
    status, body = local_stack.graphql(ME)
    assert status == 401 and error_of(body)["errorType"] == "Unauthorized"
    for label, token in _bad_tokens(registered["user"]["id"], registered["accessToken"]).items():
        status, body = local_stack.graphql(ME, token=token)
        assert (status, error_of(body)["errorType"]) == (401, "Unauthorized"), label


def test_revoked_user_is_refused(local_stack):
    from pymongo import MongoClient

    from chalicelib.auth.repository import AuthRepository

    registered = register(local_stack, seed_payload())
    with MongoClient(local_stack.env["MONGODB_URI"], tz_aware=True) as client:
        repo = AuthRepository(client[local_stack.env.get("MONGODB_DB", "jucr")])
        assert repo.bump_token_version(registered["user"]["id"]) == 1
    err = error_of(local_stack.graphql(ME, token=registered["accessToken"])[1])
    assert err["errorType"] == "Unauthorized"
    err = error_of(local_stack.graphql(REFRESH, {"token": registered["refreshToken"]})[1])
    assert err["errorType"] == "Unauthorized"
