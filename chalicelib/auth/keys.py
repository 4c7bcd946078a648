"""Signing keys for access tokens: Ed25519 (JWT ``alg`` = ``EdDSA``), loaded once per process.

Why Ed25519: signatures and keys are small, verification is fast (tens of
microseconds) and, unlike RSA or HMAC, there is exactly one algorithm per key
type, so the verifier pins ``EdDSA`` and no ``alg`` header can talk it into
HS256-with-the-public-key or ``none``.

Two loaders, because the two sides must not hold the same secrets:

- :func:`load_keyring` (the auth resolver, which signs), first match wins:
  1. ``JWT_PRIVATE_KEY`` / ``JWT_PUBLIC_KEY`` (PEM);
  2. ``JWT_KEY_SECRET_ID``: a Secrets Manager secret holding either a PEM private
     key or JSON ``{"privateKey": PEM, "publicKey": PEM}``;
  3. stage ``local`` or ``test`` with neither: a dev key pair generated once into
     ``.local/dev-jwt/ed25519.pem`` (gitignored), shared by every local process
     (chalice, the event pump, the CLI). Other stages refuse to start without keys.
- :func:`load_verifying_keys` (the authorizer, on every request path), which never
  reads ``JWT_PRIVATE_KEY`` or ``JWT_KEY_SECRET_ID``, so a bug or a compromise there
  cannot sign tokens: ``JWT_PUBLIC_KEY`` (PEM), else ``JWT_PUBLIC_KEYS_SECRET_ID``
  (JSON ``{"publicKey": PEM, "previousPublicKeys": [PEM, ...]}``, written by the
  deploy step from the signing-key secret, ``appsync/secrets.py``), else the dev
  key's public half in ``local``/``test``.

Secrets are fetched once per process through the composition root (boto3 is
imported only on that path).

Rotation: ``JWT_PREVIOUS_PUBLIC_KEYS`` (one or more PEM public keys, concatenated)
are accepted for verification beside the current key, chosen by the token's
``kid``. A new signing key can then go live without signing everybody out: the
tokens of the old key keep working until they expire (docs/auth.md "Rotating the
signing key").
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from chalicelib.auth.settings import AuthorizerSettings, AuthSettings
from chalicelib.config import ConfigError

ALGORITHM = "EdDSA"
DEV_KEY_DIR = Path(__file__).resolve().parents[2] / ".local" / "dev-jwt"
DEV_KEY_FILE = "ed25519.pem"
DEV_STAGES = frozenset({"local", "test"})

_lock = threading.Lock()
_cache: dict[tuple, KeyRing] = {}


_PEM_PUBLIC = re.compile(r"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)


def key_id(public_key: Ed25519PublicKey) -> str:
    """Key id for the JWT header: lets a verifier tell keys apart during a rotation."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class KeyRing:
    """The public key that verifies and, where this process may sign, the private key.

    ``previous`` holds retired public keys that still verify (never sign) while
    their tokens may be alive.
    """

    public_key: Ed25519PublicKey
    private_key: Ed25519PrivateKey | None = None
    previous: tuple[Ed25519PublicKey, ...] = ()

    @functools.cached_property
    def kid(self) -> str:
        return key_id(self.public_key)

    @functools.cached_property
    def _verifying_keys(self) -> dict[str, Ed25519PublicKey]:
        """By kid, computed once per ring: the authorizer looks a key up on every request."""
        return {**{key_id(key): key for key in self.previous}, self.kid: self.public_key}

    def verifying_key(self, kid: Any) -> Ed25519PublicKey | None:
        """The key a token names by ``kid`` (no ``kid``: the current key); None if we know no such key."""
        if kid is None:
            return self.public_key
        return self._verifying_keys.get(kid) if isinstance(kid, str) else None

    def signing_key(self) -> Ed25519PrivateKey:
        if self.private_key is None:
            raise ConfigError("JWT_PRIVATE_KEY (or JWT_KEY_SECRET_ID) is required to issue tokens")
        return self.private_key

    @classmethod
    def generate(cls) -> KeyRing:
        private = Ed25519PrivateKey.generate()
        return cls(public_key=private.public_key(), private_key=private)

    @classmethod
    def from_pem(cls, private_pem: str | None = None, public_pem: str | None = None) -> KeyRing:
        """Build from PEM text; the public key is derived when only the private one is given."""
        private = _load_private(private_pem) if private_pem else None
        if public_pem:
            public = _load_public(public_pem)
            if private is not None and key_id(public) != key_id(private.public_key()):
                # Tokens would carry one kid and be checked against another: every token refused.
                raise ConfigError("the JWT public key does not belong to the private key (replace both "
                                  "when rotating)")
        elif private is not None:
            public = private.public_key()
        else:
            raise ConfigError("no JWT key given")
        return cls(public_key=public, private_key=private)

    def private_pem(self) -> str:
        return self.signing_key().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    def public_pem(self) -> str:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()


def _load_private(pem: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ConfigError("JWT_PRIVATE_KEY is not a readable PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError("JWT_PRIVATE_KEY must be an Ed25519 key (JWT alg EdDSA)")
    return key


def _load_public(pem: str, variable: str = "JWT_PUBLIC_KEY") -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError):
        raise ConfigError(f"{variable} is not a readable PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{variable} must be an Ed25519 key (JWT alg EdDSA)")
    return key


def load_previous_keys(text: str) -> tuple[Ed25519PublicKey, ...]:
    """``JWT_PREVIOUS_PUBLIC_KEYS``: PEM public keys one after another; anything else is refused."""
    if not text.strip():
        return ()
    blocks = _PEM_PUBLIC.findall(text)
    if not blocks or _PEM_PUBLIC.sub("", text).strip():
        raise ConfigError("JWT_PREVIOUS_PUBLIC_KEYS must be PEM public keys (-----BEGIN PUBLIC KEY----- ...) "
                          "and nothing else")
    return tuple(_load_public(block, "JWT_PREVIOUS_PUBLIC_KEYS") for block in blocks)


def load_verifying_keys(settings: AuthorizerSettings, stage: str, *, dev_dir: Path = DEV_KEY_DIR,
                        secrets_client: Any = None) -> KeyRing:
    """The authorizer's keys: public only, cached per process (see the module docstring for the order).

    ``stage`` decides whether the dev key may stand in when no key is configured.
    """
    cache_key = ("verify", settings.jwt_public_key, settings.jwt_public_keys_secret_id, stage,
                 settings.jwt_previous_public_keys, str(dev_dir))
    with _lock:
        ring = _cache.get(cache_key)
        if ring is None:
            found = _resolve_verifying(settings, stage, dev_dir, secrets_client)
            ring = dataclasses.replace(found, previous=found.previous + load_previous_keys(
                settings.jwt_previous_public_keys))
            _cache[cache_key] = ring
        return ring


def _resolve_verifying(settings: AuthorizerSettings, stage: str, dev_dir: Path, secrets_client: Any) -> KeyRing:
    if settings.jwt_public_key:
        return KeyRing(public_key=_load_public(settings.jwt_public_key))
    if settings.jwt_public_keys_secret_id:
        secret_id = settings.jwt_public_keys_secret_id
        return parse_public_keys_secret(_secret_text(secret_id, secrets_client), secret_id)
    if stage in DEV_STAGES:
        return KeyRing(public_key=dev_keyring(dev_dir).public_key)
    raise ConfigError(f"JWT_PUBLIC_KEYS_SECRET_ID or JWT_PUBLIC_KEY is required in stage {stage!r}")


def parse_public_keys_secret(text: str, secret_id: str) -> KeyRing:
    """``{"publicKey": PEM, "previousPublicKeys": [PEM, ...]}`` and nothing else: no private key gets in here."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("publicKey"), str):
        raise ConfigError(f"secret {secret_id} must be JSON with a publicKey (PEM)")
    if set(doc) - {"publicKey", "previousPublicKeys"}:
        raise ConfigError(f"secret {secret_id} may hold only publicKey and previousPublicKeys")
    previous = doc.get("previousPublicKeys", [])
    if not isinstance(previous, list) or not all(isinstance(pem, str) for pem in previous):
        raise ConfigError(f"secret {secret_id}: previousPublicKeys must be a list of PEM public keys")
    return KeyRing(public_key=_load_public(doc["publicKey"], f"secret {secret_id} publicKey"),
                   previous=tuple(_load_public(pem, f"secret {secret_id} previousPublicKeys") for pem in previous))


def load_keyring(settings: AuthSettings, verifying: AuthorizerSettings, stage: str, *, dev_dir: Path = DEV_KEY_DIR,
                 secrets_client: Any = None) -> KeyRing:
    """The signing key ring, cached per process (see the module docstring for the order).

    The private key comes from ``settings``; the public key it must match and the retired keys
    from ``verifying``, the authorizer's section, so both sides verify with the same keys.
    """
    cache_key = (settings.jwt_private_key, verifying.jwt_public_key, settings.jwt_key_secret_id, stage,
                 verifying.jwt_previous_public_keys, str(dev_dir))
    with _lock:
        ring = _cache.get(cache_key)
        if ring is None:
            previous = load_previous_keys(verifying.jwt_previous_public_keys)
            ring = dataclasses.replace(_resolve(settings, verifying.jwt_public_key, stage, dev_dir, secrets_client),
                                       previous=previous)
            _cache[cache_key] = ring
        return ring


def reset_keyring_cache() -> None:
    with _lock:
        _cache.clear()


def _resolve(settings: AuthSettings, public_pem: str, stage: str, dev_dir: Path, secrets_client: Any) -> KeyRing:
    if settings.jwt_private_key or public_pem:
        return KeyRing.from_pem(settings.jwt_private_key or None, public_pem or None)
    if settings.jwt_key_secret_id:
        return _from_secret(settings.jwt_key_secret_id, secrets_client)
    if stage in DEV_STAGES:
        return dev_keyring(dev_dir)
    raise ConfigError(f"JWT_PRIVATE_KEY/JWT_PUBLIC_KEY or JWT_KEY_SECRET_ID is required in stage {stage!r}")


def _secret_text(secret_id: str, client: Any) -> str:
    if client is None:
        from chalicelib import bootstrap

        return bootstrap.secret_string(secret_id)
    return client.get_secret_value(SecretId=secret_id)["SecretString"]


def _from_secret(secret_id: str, client: Any) -> KeyRing:
    return parse_signing_secret(_secret_text(secret_id, client), secret_id)


def parse_signing_secret(text: str, secret_id: str) -> KeyRing:
    """The signing-key secret: a PEM private key, or JSON with ``privateKey`` (and ``publicKey``, checked).

    Anything else is a :class:`ConfigError` naming the secret id and the rule, never the contents (the
    deploy step and the authorizer report these): a JSON array, or a key that is not a string.
    """
    if text.lstrip().startswith(("{", "[")):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            raise ConfigError(f"secret {secret_id} is neither a PEM key nor JSON") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"secret {secret_id} must be a JSON object with privateKey (PEM), or a PEM key")
        private, public = doc.get("privateKey"), doc.get("publicKey")
        if not isinstance(private, str) or not isinstance(public, str | None):
            raise ConfigError(f"secret {secret_id}: privateKey must be a PEM string, and publicKey too if given")
        return KeyRing.from_pem(private, public)
    return KeyRing.from_pem(private_pem=text)


def dev_keyring(directory: Path) -> KeyRing:
    """Load the local dev key, creating it once; safe when two processes start together.

    The key is written to a temporary file and hard-linked into place: ``link``
    fails if another process won the race, and then we read the winner's key.
    """
    path = directory / DEV_KEY_FILE
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{DEV_KEY_FILE}.{os.getpid()}.{threading.get_ident()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(KeyRing.generate().private_pem())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return KeyRing.from_pem(private_pem=path.read_text())
