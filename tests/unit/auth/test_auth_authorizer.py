"""Authorizer: the AppSync contract and every token it must refuse."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.auth.authorizer import AuthorizerConfig, DenyList, decide
from chalicelib.auth.keys import KeyRing
from chalicelib.auth.tokens import issue_access_token

NOW = dt.datetime(2026, 2, 21, 14, 0, tzinfo=dt.UTC)
ISS, AUD = "https://auth.test", "jucr-test"
USER = "0b1732fa-631a-4952-b6d6-2d586ed9dbf8"


@pytest.fixture
def config(keys) -> AuthorizerConfig:
    return AuthorizerConfig(keys=keys, issuer=ISS, audience=AUD, cache_seconds=300, deny_list=DenyList({}))


def _token(keys, *, ttl=900, version=0, now=NOW, issuer=ISS, audience=AUD, user=USER) -> str:
    return issue_access_token(keys, user_id=user, token_version=version, issuer=issuer, audience=audience,
                              ttl_seconds=ttl, now=now)


def _event(token) -> dict:
    return {"authorizationToken": token, "requestContext": {"apiId": "x", "requestId": "r"}}


def _b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(**over) -> dict:
    now = int(NOW.timestamp())
    return {"iss": ISS, "aud": AUD, "sub": USER, "iat": now, "exp": now + 900, "jti": "j", "ver": 0, **over}


def test_valid_token_is_authorized_with_user_id_and_capped_ttl(keys, config):
    verdict = decide(_event(_token(keys)), config, NOW)
    # No "deniedFields": Powertools' AppSyncAuthorizerResponse leaves an empty list out, which AppSync reads as none.
    assert verdict == {"isAuthorized": True, "resolverContext": {"userId": USER, "tokenVersion": "0"},
                       "ttlOverride": 300}


def test_ttl_override_never_outlives_the_token(keys, config):
    verdict = decide(_event(_token(keys, ttl=900)), config, NOW + dt.timedelta(seconds=880))
    assert verdict["isAuthorized"] and verdict["ttlOverride"] == 20


def test_bearer_prefix_is_accepted(keys, config):
    assert decide(_event("Bearer " + _token(keys)), config, NOW)["isAuthorized"]


def _refused(config, token) -> bool:
    verdict = decide(_event(token), config, NOW)
    return verdict["isAuthorized"] is False and "resolverContext" not in verdict


def test_missing_token_and_garbage_are_refused(config):
    for token in (None, "", "garbage", "a.b.c", "eyJ.eyJ.sig", 42, "x" * 10000):
        assert _refused(config, token)
    assert decide({}, config, NOW)["isAuthorized"] is False
    assert decide(None, config, NOW)["isAuthorized"] is False


def test_alg_none_is_refused(config):
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}."
    assert _refused(config, token)


def test_hs256_signed_with_the_public_key_is_refused(keys, config):
    # The classic algorithm confusion: HMAC keyed with the (public) verification key.
    # pyjwt refuses PEM-looking HMAC keys, so sign by hand as an attacker would.
    import hashlib
    import hmac

    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(_claims())}"
    secret = keys.public_pem().encode()
    signature = _b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())
    assert _refused(config, f"{signing_input}.{signature}")


def test_rs256_token_is_refused(config):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert _refused(config, jwt.encode(_claims(), other, algorithm="RS256"))
    pem = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    assert _refused(config, jwt.encode(_claims(), pem, algorithm="RS256"))


def test_token_signed_with_another_ed25519_key_is_refused(config):
    assert _refused(config, _token(KeyRing.generate()))


def test_expired_token_is_refused(keys, config):
    token = _token(keys, ttl=60, now=NOW - dt.timedelta(minutes=5))
    assert _refused(config, token)


@pytest.mark.parametrize("override", [{"issuer": "https://evil.example"}, {"audience": "other-api"}])
def test_wrong_issuer_or_audience_is_refused(keys, config, override):
    assert _refused(config, _token(keys, **override))


def test_tampered_payload_is_refused(keys, config):
    header, _, signature = _token(keys).split(".")
    forged = _b64(_claims(sub="someone-else"))
    assert _refused(config, f"{header}.{forged}.{signature}")


@pytest.mark.parametrize("missing", ["sub", "exp", "iss", "aud", "jti", "iat"])
def test_tokens_missing_a_required_claim_are_refused(keys, config, missing):
    claims = _claims()
    del claims[missing]
    assert _refused(config, jwt.encode(claims, keys.signing_key(), algorithm="EdDSA"))


def test_revoked_user_is_refused_by_the_deny_list(keys, config):
    revoked_all = AuthorizerConfig(**{**config.__dict__, "deny_list": DenyList.parse(f" {USER} ,other")})
    assert _refused(revoked_all, _token(keys))

    revoked_before_v2 = AuthorizerConfig(**{**config.__dict__, "deny_list": DenyList.parse(f"{USER}:2")})
    assert _refused(revoked_before_v2, _token(keys, version=1))
    assert decide(_event(_token(keys, version=2)), revoked_before_v2, NOW)["isAuthorized"]
    # someone else is unaffected
    assert decide(_event(_token(keys, user="another")), revoked_all, NOW)["isAuthorized"] is True


def test_verifying_needs_only_the_public_key(keys, config):
    public_only = KeyRing.from_pem(public_pem=keys.public_pem())
    cfg = AuthorizerConfig(**{**config.__dict__, "keys": public_only})
    assert decide(_event(_token(keys)), cfg, NOW)["isAuthorized"]


def test_during_a_rotation_tokens_of_the_previous_key_pass_until_it_is_dropped():
    old, new = KeyRing.generate(), KeyRing.generate()
    verifier = KeyRing.from_pem(public_pem=new.public_pem())
    rotating = AuthorizerConfig(keys=dataclasses.replace(verifier, previous=(old.public_key,)), issuer=ISS,
                                audience=AUD, cache_seconds=300, deny_list=DenyList({}))
    assert decide(_event(_token(old)), rotating, NOW)["isAuthorized"] is True
    assert decide(_event(_token(new)), rotating, NOW)["isAuthorized"] is True
    assert _refused(rotating, _token(KeyRing.generate()))  # a key nobody listed
    done = dataclasses.replace(rotating, keys=verifier)
    assert _refused(done, _token(old))
    assert decide(_event(_token(new)), done, NOW)["isAuthorized"] is True


def test_a_token_naming_a_listed_kid_but_signed_by_another_key_is_refused():
    old, new, forger = KeyRing.generate(), KeyRing.generate(), KeyRing.generate()
    config = AuthorizerConfig(keys=dataclasses.replace(KeyRing.from_pem(public_pem=new.public_pem()),
                                                       previous=(old.public_key,)),
                              issuer=ISS, audience=AUD, cache_seconds=300, deny_list=DenyList({}))
    for kid in (old.kid, new.kid):
        forged = jwt.encode(_claims(), forger.signing_key(), algorithm="EdDSA", headers={"kid": kid})
        assert _refused(config, forged)
