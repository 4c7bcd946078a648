"""The Lambda entry points as app.py calls them: settings from the environment, moto bus, embedded store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib import bootstrap
from chalicelib.auth.entry import authorize, resolve
from chalicelib.contracts.errors import Unauthorized, ValidationError

SEED = {"email": "driver@example.com", "name": "Dana Driver", "password": "correct horse battery",
        "vehicle": {"brand": "Volkswagen", "model": "ID.3", "batteryCapacity": 58.0}}
ROOT = Path(__file__).resolve().parents[3]


def _field(name: str, arguments: dict | None = None, identity: dict | None = None) -> dict:
    return {"arguments": arguments or {}, "identity": identity, "source": None,
            "info": {"fieldName": name, "parentTypeName": "Query" if name == "me" else "Mutation"}}


class Ctx:
    aws_request_id = "req-1"


def test_register_publishes_to_the_bus_and_the_token_passes_the_authorizer(aws, monkeypatch):
    out = resolve(_field("register", {"input": SEED}), Ctx())
    user_id = out["user"]["id"]
    messages = aws.receive_all("wallets")
    details = [json.loads(m["Body"])["detail"] for m in messages]
    assert [d["userId"] for d in details] == [user_id]
    assert "driver@example.com" not in json.dumps(details)

    verdict = authorize({"authorizationToken": out["accessToken"], "requestContext": {}})
    assert verdict["isAuthorized"] and verdict["resolverContext"]["userId"] == user_id
    assert 0 < verdict["ttlOverride"] <= 300

    me = resolve(_field("me", identity={"resolverContext": verdict["resolverContext"]}), Ctx())
    assert me == out["user"]
    with pytest.raises(Unauthorized):
        resolve(_field("me", identity=None), Ctx())

    monkeypatch.setenv("JWT_REVOKED_USERS", user_id)
    bootstrap.reset()
    assert authorize({"authorizationToken": out["accessToken"], "requestContext": {}})["isAuthorized"] is False


def test_login_and_refresh_through_the_entry(aws):
    resolve(_field("register", {"input": SEED}), Ctx())
    logged_in = resolve(_field("login", {"input": {"email": SEED["email"], "password": SEED["password"]}}), Ctx())
    rotated = resolve(_field("refreshToken", {"token": logged_in["refreshToken"]}), Ctx())
    assert rotated["user"]["id"] == logged_in["user"]["id"]
    with pytest.raises(ValidationError):
        resolve(_field("wallet"), Ctx())


def test_misconfigured_keys_deny_instead_of_crashing(settings, monkeypatch):
    monkeypatch.setenv("JUCR_STAGE", "prod")
    bootstrap.reset()
    assert authorize({"authorizationToken": "x.y.z"}) == {"isAuthorized": False, "ttlOverride": 0}


# What the authorizer's cold start must not load: the store driver, the AWS SDK (Powertools imports
# botocore's top module only, no session or client), another domain, the resolver side, every section but
# its own. Marshmallow is loaded: it validates the settings sections of every function, this one included.
NOT_ON_THE_AUTHORIZER_PATH = ("pymongo", "boto3", "botocore.session", "botocore.client", "chalicelib.sections",
                              "chalicelib.billing", "chalicelib.ocm", "chalicelib.dlq", "chalicelib.events",
                              "chalicelib.resolvers", "chalicelib.auth.graphql", "chalicelib.auth.service",
                              "aws_lambda_powertools.event_handler")


def test_the_authorizer_lambda_loads_no_store_sdk_or_resolver_code(settings):
    """The whole path Lambda runs: ``import app``, then the handler, with a Lambda context."""
    code = ("import sys, types, app; "
            "ctx = types.SimpleNamespace(function_name='authorizer', memory_limit_in_mb=128, aws_request_id='r', "
            "invoked_function_arn='arn:aws:lambda:eu-central-1:123456789012:function:authorizer'); "
            "verdict = app.authorizer({'authorizationToken': 'x.y.z', 'requestContext': {}}, ctx); "
            f"print(verdict['isAuthorized'], sorted(m for m in {NOT_ON_THE_AUTHORIZER_PATH!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False []"


def _login_from(address: str, password: str) -> dict:
    event = _field("login", {"input": {"email": SEED["email"], "password": password}})
    event["request"] = {"headers": {"x-forwarded-for": f"{address}, 130.176.0.1"}}  # viewer, CloudFront
    return event


def test_the_resolver_hands_the_callers_network_to_the_throttle(aws, monkeypatch):
    """An attacker's failures delay the attacker's network, and the owner elsewhere signs in at once."""
    from chalicelib.contracts.errors import TooManyAttempts

    monkeypatch.setenv("LOGIN_FREE_FAILURES", "2")
    bootstrap.reset()
    resolve(_field("register", {"input": SEED}), Ctx())
    for _ in range(2):
        with pytest.raises(Unauthorized):
            resolve(_login_from("203.0.113.7", "wrong guess"), Ctx())
    with pytest.raises(TooManyAttempts):
        resolve(_login_from("203.0.113.7", SEED["password"]), Ctx())  # even the right password waits there
    assert resolve(_login_from("198.51.100.20", SEED["password"]), Ctx())["user"]["email"] == SEED["email"]
