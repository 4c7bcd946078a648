"""Least privilege for secrets: each function may read only the secrets it uses, by id, never by value.

The finding: the authorizer read the whole signing-key secret (private key included) and every
function was given ``MONGODB_URI`` and ``OCM_API_KEY`` as plain environment variables. Now each
function's environment in ``.chalice/config.json`` names only its own secret ids (per function, as
Chalice merges them), its IAM policy grants exactly those, the authorizer's secret holds public keys
only (written by the deploy step), and the store and OCM clients get their values from the ids.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from chalice.config import Config

from appsync import deploy, policies
from appsync.infra import Changes
from appsync.secrets import ensure_public_keys
from chalicelib import bootstrap
from chalicelib.auth.keys import KeyRing, parse_public_keys_secret, reset_keyring_cache
from chalicelib.auth.tokens import issue_access_token
from chalicelib.config import load_section
from chalicelib.ocm.repository import STATIONS
from chalicelib.sections import StageSettings, all_variables, load_stage_settings

ROOT = Path(__file__).resolve().parents[2]
CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
STORE_USERS = {fn for fn in policies.FUNCTIONS if fn != "authorizer"}  # the authorizer never queries MongoDB
# What each function's code reads (auth entry, store, OCM entry): the secrets its role needs, by setting.
NEEDED = {fn: {"MONGODB_URI_SECRET_ID"} for fn in STORE_USERS} | {"authorizer": {"JWT_PUBLIC_KEYS_SECRET_ID"}}
NEEDED["auth_resolver"] = {"JWT_KEY_SECRET_ID", "LOGIN_KEY_PEPPER_SECRET_ID", "MONGODB_URI_SECRET_ID"}
for _fn in ("ocm_sync", "ocm_full_sweep"):
    NEEDED[_fn] = {"MONGODB_URI_SECRET_ID", "OCM_API_KEY_SECRET_ID"}
PLAIN_SECRETS = [v.env for v in all_variables() if v.secret]
CASES = [(stage, fn) for stage in policies.POLICY_STAGES for fn in policies.FUNCTIONS]


def lambda_env(stage: str, function: str) -> dict[str, str]:
    """The function's environment exactly as ``chalice deploy`` computes it (Chalice's own merge)."""
    return Config(chalice_stage=stage, function_name=function, config_from_disk=CONFIG).environment_variables


def secret_settings(env: dict[str, str]) -> set[str]:
    return {name for name, value in env.items() if name.endswith("_SECRET_ID") and value}


def secret_reads(client) -> list[str]:
    """Every SecretId this client asks GetSecretValue for, via botocore's event hooks."""
    asked: list[str] = []
    client.meta.events.register("before-parameter-build.secrets-manager.GetSecretValue",
                                lambda params, **_: asked.append(params["SecretId"]))
    return asked


def signing_secret(ring: KeyRing) -> str:
    return json.dumps({"privateKey": ring.private_pem(), "publicKey": ring.public_pem()})


def run_as(monkeypatch, stage: str, function: str, **extra: str) -> StageSettings:
    """This process becomes ``function`` of ``stage``: its config.json environment and nothing else."""
    for name in [v.env for v in all_variables()]:
        monkeypatch.delenv(name, raising=False)
    for name, value in {**lambda_env(stage, function), **extra}.items():
        monkeypatch.setenv(name, value)
    bootstrap.reset()
    reset_keyring_cache()
    return load_stage_settings()


def test_the_authorizer_verifies_tokens_without_ever_reading_the_signing_secret(moto, monkeypatch):
    from chalicelib.auth import entry

    ring = KeyRing.generate()
    signing_id = lambda_env("prod", "auth_resolver")["JWT_KEY_SECRET_ID"]
    moto.create_secret(Name=signing_id, SecretString=signing_secret(ring))
    ensure_public_keys(lambda name: moto, deploy.key_secrets("prod"), Changes())
    settings = run_as(monkeypatch, "prod", "authorizer")
    asked = secret_reads(bootstrap.aws_client("secretsmanager"))
    entry._authorizer_config.cache_clear()
    token = issue_access_token(ring, user_id="u-1", token_version=0, issuer=settings.authorizer.jwt_issuer,
                               audience=settings.authorizer.jwt_audience, ttl_seconds=900, now=dt.datetime.now(dt.UTC))
    try:
        assert entry.authorize({"authorizationToken": token, "requestContext": {}})["isAuthorized"] is True
        assert asked == [settings.authorizer.jwt_public_keys_secret_id]
        assert signing_id not in asked

        # A fresh authorizer process where the signing secret does not exist at all still verifies.
        moto.delete_secret(SecretId=signing_id, ForceDeleteWithoutRecovery=True)
        run_as(monkeypatch, "prod", "authorizer")
        entry._authorizer_config.cache_clear()
        assert entry.authorize({"authorizationToken": token, "requestContext": {}})["isAuthorized"] is True
    finally:
        entry._authorizer_config.cache_clear()
        bootstrap.reset()
        reset_keyring_cache()


@pytest.mark.parametrize(("stage", "function"), CASES, ids=[f"{s}-{f}" for s, f in CASES])
def test_each_function_env_names_only_the_secrets_it_uses_and_its_policy_grants_exactly_those(stage, function):
    env = lambda_env(stage, function)
    assert secret_settings(env) == NEEDED[function]
    granted = [s for s in json.loads((ROOT / ".chalice" / policies.policy_file_name(stage, function)).read_text())
               ["Statement"] if "secretsmanager:GetSecretValue" in s["Action"]]
    assert [r for s in granted for r in s["Resource"]] == sorted(
        policies.secret_arn(env[name]) for name in NEEDED[function])
    assert all(f"jucr/{stage}/" in env[name] for name in NEEDED[function])  # no secret of another stage


@pytest.mark.parametrize("stage", policies.POLICY_STAGES)
def test_the_authorizers_policy_names_no_private_key_secret(stage):
    signing = lambda_env(stage, "auth_resolver")["JWT_KEY_SECRET_ID"]
    text = (ROOT / ".chalice" / policies.policy_file_name(stage, "authorizer")).read_text()
    assert signing not in text
    assert lambda_env(stage, "authorizer")["JWT_PUBLIC_KEYS_SECRET_ID"] in text


@pytest.mark.parametrize(("stage", "function"), CASES, ids=[f"{s}-{f}" for s, f in CASES])
def test_no_deployed_function_gets_a_secret_value_in_its_environment(stage, function):
    env = lambda_env(stage, function)
    assert set(PLAIN_SECRETS) >= {"MONGODB_URI", "OCM_API_KEY", "JWT_PRIVATE_KEY"}
    assert not {name for name in PLAIN_SECRETS if env.get(name)}
    # ... and each plain secret has an id setting to use instead (JWT_PRIVATE_KEY: the signing-key secret).
    ids = {v.env for v in all_variables()}
    assert {"MONGODB_URI_SECRET_ID", "OCM_API_KEY_SECRET_ID", "JWT_KEY_SECRET_ID"} <= ids


def test_the_deploy_guide_no_longer_injects_secret_values_into_the_config():
    guide = (ROOT / "docs" / "deploy.md").read_text()
    assert "jq --arg u" not in guide and "environment_variables += {MONGODB_URI" not in guide


def _public_keys(client, secret_id: str) -> dict:
    return json.loads(client.get_secret_value(SecretId=secret_id)["SecretString"])


def test_the_deploy_step_writes_the_public_keys_secret_idempotently_and_carries_old_keys_on_rotation(moto):
    ids = deploy.key_secrets("dev")
    old, new = KeyRing.generate(), KeyRing.generate()
    moto.create_secret(Name=ids.signing_id, SecretString=signing_secret(old))

    def step(**kw) -> list[str]:
        lines: list[str] = []
        deploy.run("dev", only_infra=True, echo=lines.append, **kw)
        assert not any("KEY-----" in line for line in lines)
        return [line for line in lines if "public-keys secret" in line]

    assert step() == [f"created   public-keys secret     {ids.public_id}"]
    text = moto.get_secret_value(SecretId=ids.public_id)["SecretString"]
    assert "PRIVATE" not in text and set(json.loads(text)) == {"publicKey", "previousPublicKeys"}
    assert parse_public_keys_secret(text, ids.public_id).kid == old.kid
    assert step() == [f"unchanged public-keys secret     {ids.public_id}"]

    moto.put_secret_value(SecretId=ids.signing_id, SecretString=signing_secret(new))  # a rotation
    assert step() == [f"updated   public-keys secret     {ids.public_id}"]
    assert _public_keys(moto, ids.public_id) == {"publicKey": new.public_pem(),
                                                 "previousPublicKeys": [old.public_pem()]}
    assert step() == [f"unchanged public-keys secret     {ids.public_id}"]
    assert step(retire_previous_keys=True) == [f"updated   public-keys secret     {ids.public_id}"]
    assert _public_keys(moto, ids.public_id)["previousPublicKeys"] == []


def test_the_deploy_step_never_overwrites_a_secret_of_that_name_it_did_not_make(moto):
    ids = deploy.key_secrets("dev")
    moto.create_secret(Name=ids.signing_id, SecretString=signing_secret(KeyRing.generate()))
    moto.create_secret(Name=ids.public_id, SecretString="someone else's")
    with pytest.raises(SystemExit, match="without our tag"):
        ensure_public_keys(lambda name: moto, ids, Changes())
    assert moto.get_secret_value(SecretId=ids.public_id)["SecretString"] == "someone else's"


OCM_KEY = "ocm-key-from-secrets-manager"


def test_the_store_and_ocm_clients_get_their_values_from_secret_ids(aws, settings, monkeypatch, capsys):
    """The OCM sync Lambda as deployed: only ids in its env; the URI and key come from Secrets Manager once."""
    from pymongo import MongoClient

    from chalicelib.ocm.entry import scheduled_sync
    from devstack.ocm_standin import load_records, start_standin

    records = load_records()[:40]
    server, thread = start_standin("127.0.0.1", 0, api_key=OCM_KEY, records=records)
    sm = aws.client("secretsmanager")
    sm.create_secret(Name="jucr/test/mongodb-uri", SecretString=settings.store.mongodb_uri)
    sm.create_secret(Name="jucr/test/ocm-api-key", SecretString=OCM_KEY)
    for name, value in {"MONGODB_URI": "", "OCM_API_KEY": "", "MONGODB_URI_SECRET_ID": "jucr/test/mongodb-uri",
                        "OCM_API_KEY_SECRET_ID": "jucr/test/ocm-api-key", "OCM_API_URL": server.url,
                        "OCM_PAGE_SIZE": "1000"}.items():
        monkeypatch.setenv(name, value)
    bootstrap.reset()
    asked = secret_reads(bootstrap.aws_client("secretsmanager"))
    try:
        result = scheduled_sync(full=False, context=None)
        scheduled_sync(full=False, context=None)  # a warm start: nothing fetched again
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert result["complete"] is True and result["inserted"] == len(records)
    client = MongoClient(settings.store.mongodb_uri, tz_aware=True)
    try:
        assert client[settings.store.mongodb_db][STATIONS].count_documents({}) == len(records)
    finally:
        client.close()
    assert sorted(asked) == ["jucr/test/mongodb-uri", "jucr/test/ocm-api-key"]
    out = capsys.readouterr()
    assert OCM_KEY not in out.out + out.err and settings.store.mongodb_uri not in out.out + out.err


def test_a_store_client_with_a_secret_id_but_no_resolved_uri_refuses_instead_of_using_localhost():
    from chalicelib.config import ConfigError
    from chalicelib.store import get_database
    from chalicelib.store.settings import StoreSettings

    with pytest.raises(ConfigError, match="MONGODB_URI_SECRET_ID"):
        get_database(load_section(StoreSettings, {"MONGODB_URI_SECRET_ID": "jucr/prod/mongodb-uri"}))
