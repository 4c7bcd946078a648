"""Key provisioning: PEM, Secrets Manager, the dev key, refusal in prod; the authorizer's public-only loader."""

from __future__ import annotations

import json

import pytest

from chalicelib.auth.keys import KeyRing, dev_keyring, load_keyring, load_verifying_keys, reset_keyring_cache
from chalicelib.auth.settings import AuthorizerSettings, AuthSettings
from chalicelib.config import ConfigError, CoreSettings, load_section
from tests.concurrency import run_concurrently


@pytest.fixture(autouse=True)
def _fresh_cache():
    reset_keyring_cache()
    yield
    reset_keyring_cache()


def keyring(env: dict[str, str], **options) -> KeyRing:
    """The resolver's key ring for ``env``, from the sections the auth resolver loads."""
    return load_keyring(load_section(AuthSettings, env), load_section(AuthorizerSettings, env),
                        load_section(CoreSettings, env).stage, **options)


def verifying_keys(env: dict[str, str], **options) -> KeyRing:
    """The authorizer's keys for ``env``: from its own section only."""
    return load_verifying_keys(load_section(AuthorizerSettings, env), load_section(CoreSettings, env).stage, **options)


class FakeSecrets:
    def __init__(self, text: str) -> None:
        self.text, self.calls = text, 0

    def get_secret_value(self, SecretId: str) -> dict:
        self.calls += 1
        return {"SecretString": self.text}


def test_pem_settings_are_used_and_public_is_derived(tmp_path):
    ring = KeyRing.generate()
    settings = {"JUCR_STAGE": "prod", "JWT_PRIVATE_KEY": ring.private_pem()}
    loaded = keyring(settings, dev_dir=tmp_path)
    assert loaded.public_pem() == ring.public_pem()
    assert not any(tmp_path.iterdir())  # no dev key made


def test_secret_is_fetched_once_per_process(tmp_path):
    ring = KeyRing.generate()
    client = FakeSecrets(json.dumps({"privateKey": ring.private_pem(), "publicKey": ring.public_pem()}))
    settings = {"JUCR_STAGE": "prod", "JWT_KEY_SECRET_ID": "jucr/jwt"}
    first = keyring(settings, dev_dir=tmp_path, secrets_client=client)
    second = keyring(settings, dev_dir=tmp_path, secrets_client=client)
    assert first is second and client.calls == 1
    assert first.kid == ring.kid


def test_secret_may_be_a_bare_pem(tmp_path):
    ring = KeyRing.generate()
    settings = {"JUCR_STAGE": "prod", "JWT_KEY_SECRET_ID": "jucr/jwt"}
    assert keyring(settings, dev_dir=tmp_path, secrets_client=FakeSecrets(ring.private_pem())).kid == ring.kid


def test_prod_without_keys_refuses_to_start(tmp_path):
    with pytest.raises(ConfigError, match="JWT_PRIVATE_KEY"):
        keyring({"JUCR_STAGE": "prod"}, dev_dir=tmp_path)


def test_non_ed25519_or_broken_keys_are_refused():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(ConfigError, match="Ed25519"):
        KeyRing.from_pem(private_pem=rsa_pem)
    with pytest.raises(ConfigError):
        KeyRing.from_pem(public_pem="-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----")


def test_local_dev_key_is_generated_once_private_and_shared(tmp_path):
    directory = tmp_path / "dev-jwt"
    rings: list[KeyRing] = []
    run_concurrently(*[lambda: rings.append(dev_keyring(directory))] * 8)
    assert len({ring.kid for ring in rings}) == 1
    files = sorted(p.name for p in directory.iterdir())
    assert files == ["ed25519.pem"]
    assert (directory / "ed25519.pem").stat().st_mode & 0o077 == 0
    settings = {"JUCR_STAGE": "local"}
    assert keyring(settings, dev_dir=directory).kid == rings[0].kid


def test_dev_key_directory_is_gitignored():
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    result = subprocess.run(["git", "check-ignore", "-q", ".local/dev-jwt/ed25519.pem"], cwd=root)
    assert result.returncode == 0


def test_previous_public_keys_are_loaded_for_verification_only(tmp_path):
    current, old1, old2 = KeyRing.generate(), KeyRing.generate(), KeyRing.generate()
    settings = {"JUCR_STAGE": "prod", "JWT_PUBLIC_KEY": current.public_pem(),
                "JWT_PREVIOUS_PUBLIC_KEYS": old1.public_pem() + "\n" + old2.public_pem()}
    ring = keyring(settings, dev_dir=tmp_path)
    assert ring.kid == current.kid and ring.private_key is None
    assert [KeyRing(public_key=k).kid for k in ring.previous] == [old1.kid, old2.kid]
    assert ring.verifying_key(old2.kid) is ring.previous[1] and ring.verifying_key("nope") is None


@pytest.mark.parametrize("text", ["not a key", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
                                  "{pem} trailing words", "{rsa}"])
def test_previous_public_keys_that_are_not_ed25519_pem_are_refused(tmp_path, text):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    value = text.format(pem=KeyRing.generate().public_pem(), rsa=rsa_pem)
    settings = {"JUCR_STAGE": "prod", "JWT_PUBLIC_KEY": KeyRing.generate().public_pem(),
                "JWT_PREVIOUS_PUBLIC_KEYS": value}
    with pytest.raises(ConfigError, match="JWT_PREVIOUS_PUBLIC_KEYS"):
        keyring(settings, dev_dir=tmp_path)


def test_a_public_key_that_does_not_match_the_private_key_is_refused(tmp_path):
    old, new = KeyRing.generate(), KeyRing.generate()  # a rotation that replaced only privateKey
    client = FakeSecrets(json.dumps({"privateKey": new.private_pem(), "publicKey": old.public_pem()}))
    settings = {"JUCR_STAGE": "prod", "JWT_KEY_SECRET_ID": "jucr/jwt"}
    with pytest.raises(ConfigError, match="does not belong"):
        keyring(settings, dev_dir=tmp_path, secrets_client=client)


@pytest.mark.parametrize("doc", [["{priv}"], {"privateKey": 5}, {"privateKey": ["{priv}"]},
                                 {"privateKey": "{priv}", "publicKey": {"pem": "{priv}"}}, {"publicKey": "{priv}"}])
def test_a_signing_secret_of_the_wrong_shape_is_a_config_error_naming_the_secret(tmp_path, doc):
    """Not an AttributeError (the deploy step catches ConfigError only), and never the contents."""
    pem = KeyRing.generate().private_pem()
    text = json.dumps(doc).replace("{priv}", pem.replace("\n", "\\n"))
    settings = {"JUCR_STAGE": "prod", "JWT_KEY_SECRET_ID": "jucr/jwt"}
    with pytest.raises(ConfigError, match="secret jucr/jwt") as refused:
        keyring(settings, dev_dir=tmp_path, secrets_client=FakeSecrets(text))
    assert "PRIVATE KEY" not in str(refused.value) and pem[40:60] not in str(refused.value)



# --- the authorizer's loader: public keys only -------------------------------------------------------


class SecretsById:
    """Secrets Manager by id, recording every id asked for (the authorizer must ask only for its own)."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets, self.asked = secrets, []

    def get_secret_value(self, SecretId: str) -> dict:
        self.asked.append(SecretId)
        return {"SecretString": self.secrets[SecretId]}


def test_verifying_keys_come_from_the_public_keys_secret_once_and_hold_no_private_key(tmp_path):
    current, old = KeyRing.generate(), KeyRing.generate()
    client = SecretsById({"jucr/pub": json.dumps({"publicKey": current.public_pem(),
                                                  "previousPublicKeys": [old.public_pem()]}),
                          "jucr/jwt": current.private_pem()})
    settings = {"JUCR_STAGE": "prod", "JWT_PUBLIC_KEYS_SECRET_ID": "jucr/pub",
                "JWT_KEY_SECRET_ID": "jucr/jwt", "JWT_PRIVATE_KEY": current.private_pem()}
    ring = verifying_keys(settings, dev_dir=tmp_path, secrets_client=client)
    assert verifying_keys(settings, dev_dir=tmp_path, secrets_client=client) is ring
    assert client.asked == ["jucr/pub"]  # never the signing secret, although this env names it too
    assert ring.private_key is None and ring.kid == current.kid
    assert ring.verifying_key(old.kid) is not None


def test_verifying_keys_never_fall_back_to_the_private_key_or_the_signing_secret(tmp_path):
    ring = KeyRing.generate()
    client = SecretsById({"jucr/jwt": ring.private_pem()})
    settings = {"JUCR_STAGE": "prod", "JWT_PRIVATE_KEY": ring.private_pem(),
                "JWT_KEY_SECRET_ID": "jucr/jwt"}
    with pytest.raises(ConfigError, match="JWT_PUBLIC_KEYS_SECRET_ID"):
        verifying_keys(settings, dev_dir=tmp_path, secrets_client=client)
    assert client.asked == []


def test_a_public_key_pem_wins_and_previous_keys_from_env_add_to_the_secret(tmp_path):
    current, old = KeyRing.generate(), KeyRing.generate()
    client = SecretsById({})
    settings = {"JUCR_STAGE": "prod", "JWT_PUBLIC_KEY": current.public_pem(),
                "JWT_PUBLIC_KEYS_SECRET_ID": "jucr/pub", "JWT_PREVIOUS_PUBLIC_KEYS": old.public_pem()}
    ring = verifying_keys(settings, dev_dir=tmp_path, secrets_client=client)
    assert client.asked == [] and ring.kid == current.kid and ring.verifying_key(old.kid) is not None


@pytest.mark.parametrize("doc", [
    {"publicKey": "{pub}", "privateKey": "{priv}"},  # a signing secret copied by mistake
    {"publicKey": "{priv}"},
    {"previousPublicKeys": ["{pub}"]},
    {"publicKey": "{pub}", "previousPublicKeys": "{pub}"},
    "{priv}",
])
def test_a_public_keys_secret_with_anything_but_public_keys_is_refused(tmp_path, doc):
    ring = KeyRing.generate()
    text = json.dumps(doc).replace("{pub}", ring.public_pem().replace("\n", "\\n")).replace(
        "{priv}", ring.private_pem().replace("\n", "\\n"))
    client = SecretsById({"jucr/pub": json.loads(text) if isinstance(doc, str) else text})
    settings = {"JUCR_STAGE": "prod", "JWT_PUBLIC_KEYS_SECRET_ID": "jucr/pub"}
    with pytest.raises(ConfigError, match="jucr/pub") as refused:
        verifying_keys(settings, dev_dir=tmp_path, secrets_client=client)
    assert "PRIVATE" not in str(refused.value) and "PUBLIC KEY-----" not in str(refused.value)


def test_local_stages_verify_with_the_dev_keys_public_half(tmp_path):
    ring = verifying_keys({"JUCR_STAGE": "test"}, dev_dir=tmp_path)
    assert ring.private_key is None and ring.kid == dev_keyring(tmp_path).kid
