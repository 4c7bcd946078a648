"""A misconfigured authorizer says what is wrong in its log, and nothing secret.

Before, the "authorizer misconfigured" line held only the error class (``ConfigError``):
on-call could not tell which variable or secret to fix. A ``ConfigError`` names the
variable or the secret id and the rule, and masks secret values, so its message is
logged; the key material that caused it must not be.
"""

from __future__ import annotations

import json

import pytest

from chalicelib import bootstrap
from chalicelib.auth.entry import authorize
from chalicelib.auth.keys import KeyRing, reset_keyring_cache

DENY = {"isAuthorized": False, "ttlOverride": 0}


def misconfigured_line(caplog) -> dict:
    """The "authorizer misconfigured" record's fields (Powertools' logger propagates to ``logging``)."""
    [record] = [r for r in caplog.records if r.getMessage() == "authorizer misconfigured"]
    return {key: str(value) for key, value in vars(record).items()}


@pytest.fixture
def prod(settings, monkeypatch):
    monkeypatch.setenv("JUCR_STAGE", "prod")
    reset_keyring_cache()
    yield monkeypatch
    reset_keyring_cache()
    bootstrap.reset()


def test_a_private_key_pasted_as_the_public_key_is_named_not_logged(prod, caplog):
    pem = KeyRing.generate().private_pem()
    prod.setenv("JWT_PUBLIC_KEY", pem)
    bootstrap.reset()
    caplog.clear()
    assert authorize({"authorizationToken": "x.y.z"}) == DENY
    line = misconfigured_line(caplog)
    assert line["errorClass"] == "ConfigError" and "JWT_PUBLIC_KEY" in line["reason"]
    body = pem.splitlines()[1]
    assert body not in json.dumps(line) and "PRIVATE KEY" not in json.dumps(line)


def test_a_public_keys_secret_holding_the_signing_key_is_named_by_id_not_logged(aws, prod, caplog):
    ring = KeyRing.generate()
    contents = json.dumps({"publicKey": ring.public_pem(), "privateKey": ring.private_pem()})
    aws.client("secretsmanager").create_secret(Name="jucr/prod/jwt-public-keys", SecretString=contents)
    prod.setenv("JWT_PUBLIC_KEYS_SECRET_ID", "jucr/prod/jwt-public-keys")
    bootstrap.reset()
    caplog.clear()
    assert authorize({"authorizationToken": "x.y.z"}) == DENY
    line = misconfigured_line(caplog)
    assert "jucr/prod/jwt-public-keys" in line["reason"]
    for secret_part in (ring.private_pem().splitlines()[1], ring.public_pem().splitlines()[1]):
        assert secret_part not in json.dumps(line)
