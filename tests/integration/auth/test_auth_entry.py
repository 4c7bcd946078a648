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


def test_authorizer_import_pulls_in_no_store_or_aws_sdk():
    code = ("import sys, chalicelib.auth.entry; "
            "print(sorted(m for m in ('pymongo','boto3','botocore','marshmallow','aws_lambda_powertools') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
