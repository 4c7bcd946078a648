"""The sign-in throttle's document ids are keyed: knowing an email no longer yields the owner's address.

The finding: the ids were plain SHA-256 of ``email + hashed network``, so anyone who could read
``auth_login_attempts`` and knew an email found that person's IPv4 address in about 2**32 hashes.
Now they are HMAC-SHA256 under a per-stage pepper held in Secrets Manager
(``LOGIN_KEY_PEPPER_SECRET_ID``), which only the auth resolver may read and the deploy step creates.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re

import pytest

from appsync import deploy, policies
from appsync.appsync_api import MANAGED_TAG, MANAGED_VALUE
from chalicelib import bootstrap
from chalicelib.auth.entry import resolve
from chalicelib.auth.repository import LOGIN_ATTEMPTS
from chalicelib.auth.sources import hash_network
from tests.security.test_secrets_least_privilege import CASES, ROOT, lambda_env

PEPPER_ID = "jucr/test/login-key-pepper"
PEPPER = "d1c3b0a5" * 8  # 64 hex characters, as the deploy step writes them
OWNER = {"email": "owner@example.com", "name": "Olga Owner", "password": "correct horse battery",
         "vehicle": {"brand": "Volkswagen", "model": "ID.3", "batteryCapacity": 58.0}}
NETWORK = ipaddress.ip_network("198.51.100.0/24")  # stands in for the whole IPv4 space: same search, smaller
OWNER_IP = "198.51.100.7"


class Ctx:
    aws_request_id = "req-1"


def _field(name: str, arguments: dict, viewer: str) -> dict:
    return {"arguments": arguments, "identity": None, "source": None,
            "request": {"headers": {"x-forwarded-for": f"{viewer}, 130.176.27.160"}},
            "info": {"fieldName": name, "parentTypeName": "Mutation"}}


def _unkeyed_candidates(email: str) -> set[str]:
    """Every id the old scheme could have given this email, over the address range: the attacker's search."""
    found = set()
    for ip in NETWORK:
        source = hash_network(str(ip))
        pair = hashlib.sha256(f"login-pair:{email}\n{source}".encode()).hexdigest()
        found |= {pair, hashlib.sha256(f"login-source:{source}".encode()).hexdigest(),
                  hashlib.sha256(f"login-trusted:{pair}".encode()).hexdigest()}
    return found


def test_a_stored_throttle_id_cannot_be_matched_by_hashing_addresses_and_uses_the_secret_pepper(aws, db, monkeypatch):
    sm = aws.client("secretsmanager")
    sm.create_secret(Name=PEPPER_ID, SecretString=PEPPER)
    monkeypatch.setenv("LOGIN_KEY_PEPPER_SECRET_ID", PEPPER_ID)
    bootstrap.reset()
    asked: list[str] = []
    bootstrap.aws_client("secretsmanager").meta.events.register(
        "before-parameter-build.secrets-manager.GetSecretValue", lambda params, **_: asked.append(params["SecretId"]))

    resolve(_field("register", {"input": OWNER}, OWNER_IP), Ctx())
    resolve(_field("login", {"input": {"email": OWNER["email"], "password": OWNER["password"]}}, OWNER_IP), Ctx())
    for _ in range(2):  # failures leave pair and source documents behind
        with pytest.raises(Exception, match="incorrect"):
            resolve(_field("login", {"input": {"email": OWNER["email"], "password": "hunter2hunter2"}}, OWNER_IP),
                    Ctx())

    ids = {doc["_id"] for doc in db[LOGIN_ATTEMPTS].find({})}
    assert len(ids) == 3  # the pair, its trust (from the sign-in), the source
    assert not ids & _unkeyed_candidates(OWNER["email"]), "an id was found by hashing the address range"
    pair = hmac.new(PEPPER.encode(), f"login-pair:{OWNER['email']}\n{hash_network(OWNER_IP)}".encode(),
                    hashlib.sha256).hexdigest()
    assert pair in ids
    assert asked == [PEPPER_ID], "the pepper is fetched once per process, not per call"


@pytest.mark.parametrize(("stage", "function"), CASES, ids=[f"{s}-{f}" for s, f in CASES])
def test_only_the_auth_resolver_names_the_pepper_and_only_its_role_may_read_it(stage, function):
    env = lambda_env(stage, function)
    policy = (ROOT / ".chalice" / policies.policy_file_name(stage, function)).read_text()
    pepper_id = f"jucr/{stage}/login-key-pepper"
    if function == "auth_resolver":
        assert env["LOGIN_KEY_PEPPER_SECRET_ID"] == pepper_id
        assert policies.secret_arn(pepper_id) in policy
    else:
        assert "LOGIN_KEY_PEPPER_SECRET_ID" not in env and "LOGIN_KEY_PEPPER" not in env
        assert "login-key-pepper" not in policy


def test_the_deploy_step_creates_the_pepper_once_and_never_rotates_it(moto):
    pepper_id = deploy.key_secrets("dev").pepper_id
    assert pepper_id == "jucr/dev/login-key-pepper"

    printed: list[str] = []

    def step() -> list[str]:
        lines: list[str] = []
        deploy.run("dev", only_infra=True, echo=lines.append)
        printed.extend(lines)
        return [line for line in lines if "login pepper secret" in line]

    assert step() == [f"created   login pepper secret    {pepper_id}"]
    value = moto.get_secret_value(SecretId=pepper_id)["SecretString"]
    assert re.fullmatch(r"[0-9a-f]{64}", value)  # 32 random bytes
    assert {"Key": MANAGED_TAG, "Value": MANAGED_VALUE} in moto.describe_secret(SecretId=pepper_id)["Tags"]
    assert step() == [f"unchanged login pepper secret    {pepper_id}"]
    assert moto.get_secret_value(SecretId=pepper_id)["SecretString"] == value
    assert value not in json.dumps(printed)  # the value is never printed
