"""Deploy step: the authorizer's public-keys secret, derived from the signing-key secret.

The authorizer runs on every request, so it must not be able to read the private
key: its role may read only ``JWT_PUBLIC_KEYS_SECRET_ID``, a secret holding JSON
``{"publicKey": PEM, "previousPublicKeys": [PEM, ...]}``. The operator keeps one
source of truth, the signing-key secret (``JWT_KEY_SECRET_ID``, read by the auth
resolver); this step writes its public half into the authorizer's secret, so the
two cannot disagree after a rotation.

Idempotent: the same signing key prints ``unchanged``. A new signing key becomes
``publicKey`` and the old one moves to the front of ``previousPublicKeys``, so
tokens signed before the rotation keep verifying until they expire (docs/auth.md
"Rotating the signing key"); ``retire_previous`` empties the list, after the
access-token lifetime or at once after a leak. Only public PEMs produced by
``cryptography`` are written: nothing read from the signing secret is copied as text.

The same step creates the sign-in throttle's pepper (``LOGIN_KEY_PEPPER_SECRET_ID``, read by
the auth resolver only): 32 random bytes, hex, made once when missing and never rotated here.
Rotating it by hand forgets every sign-in count and every trusted pair (docs/deploy.md).
"""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appsync.appsync_api import MANAGED_TAG, MANAGED_VALUE
from appsync.infra import Changes
from chalicelib.auth.keys import KeyRing, key_id, parse_public_keys_secret, parse_signing_secret
from chalicelib.config import ConfigError

KIND = "public-keys secret"
PEPPER_KIND = "login pepper secret"
PEPPER_BYTES = 32


@dataclass(frozen=True)
class KeySecrets:
    """Which secret signs (the auth resolver's) and which one the authorizer reads, by name."""

    signing_id: str
    public_id: str
    pepper_id: str = ""  # the auth resolver's LOGIN_KEY_PEPPER_SECRET_ID; "" where the stage sets none


def public_keys_document(current: KeyRing, existing: KeyRing | None, retire_previous: bool = False) -> dict[str, Any]:
    """What the public-keys secret should hold, given what it holds now (``existing``)."""
    carried = [] if existing is None or retire_previous else [existing.public_key, *existing.previous]
    previous: dict[str, str] = {}
    for key in carried:  # the retired current key first, then older ones; each once, never the new key
        kid = key_id(key)
        if kid != current.kid and kid not in previous:
            previous[kid] = KeyRing(public_key=key).public_pem()
    return {"publicKey": current.public_pem(), "previousPublicKeys": list(previous.values())}


def _canonical(ring: KeyRing) -> dict[str, Any]:
    """A stored document as our renderer would write it, so PEM whitespace never reads as a change."""
    return {"publicKey": ring.public_pem(),
            "previousPublicKeys": [KeyRing(public_key=key).public_pem() for key in ring.previous]}


def ensure_public_keys(clients: Callable[[str], Any], ids: KeySecrets, changes: Changes,
                       retire_previous: bool = False) -> None:
    """Create or update the authorizer's public-keys secret from the signing-key secret."""
    if not ids.signing_id or not ids.public_id:
        return  # a stage without secrets (PEM settings or the dev key): nothing to derive
    sm = clients("secretsmanager")
    try:
        signing_text = sm.get_secret_value(SecretId=ids.signing_id)["SecretString"]
    except sm.exceptions.ResourceNotFoundException:
        # Not a failure of this step: the operator creates it (docs/deploy.md step 1); until then the
        # authorizer denies every request, it never falls back to anything weaker.
        print(f"note: secret {ids.signing_id} not found; {ids.public_id} not written (docs/deploy.md step 1)",
              file=sys.stderr)
        return
    current = _parse(parse_signing_secret, signing_text, ids.signing_id)
    existing = _existing(sm, ids.public_id)
    desired = public_keys_document(current, existing, retire_previous)
    text = json.dumps(desired)
    if existing is None:
        sm.create_secret(Name=ids.public_id, SecretString=text,
                         Description="JWT public keys for the authorizer, derived by appsync.deploy",
                         Tags=[{"Key": MANAGED_TAG, "Value": MANAGED_VALUE}])
        changes.record("created", KIND, ids.public_id)
    elif _canonical(existing) == desired:
        changes.record("unchanged", KIND, ids.public_id)
    else:
        sm.put_secret_value(SecretId=ids.public_id, SecretString=text)
        changes.record("updated", KIND, ids.public_id)


def ensure_login_pepper(clients: Callable[[str], Any], pepper_id: str, changes: Changes) -> None:
    """Create the throttle's pepper if missing; an existing one is left as it is (rotating forgets all counts)."""
    if not pepper_id:
        return  # a stage with a plain LOGIN_KEY_PEPPER, or the dev pepper: nothing to create
    sm = clients("secretsmanager")
    try:
        tags = sm.describe_secret(SecretId=pepper_id).get("Tags", [])
    except sm.exceptions.ResourceNotFoundException:
        sm.create_secret(Name=pepper_id, SecretString=secrets.token_hex(PEPPER_BYTES),
                         Description="HMAC key of the sign-in throttle's document ids, made by appsync.deploy",
                         Tags=[{"Key": MANAGED_TAG, "Value": MANAGED_VALUE}])
        changes.record("created", PEPPER_KIND, pepper_id)
        return
    # An operator's own pepper is fine (nothing is written), but say it is not ours.
    ours = {"Key": MANAGED_TAG, "Value": MANAGED_VALUE} in tags
    changes.record("unchanged", PEPPER_KIND, pepper_id if ours else f"{pepper_id} (not ours, kept)")


def _existing(sm: Any, secret_id: str) -> KeyRing | None:
    """The keys the secret holds now; a secret of that name we did not make is refused, never overwritten."""
    try:
        tags = sm.describe_secret(SecretId=secret_id).get("Tags", [])
    except sm.exceptions.ResourceNotFoundException:
        return None
    if {"Key": MANAGED_TAG, "Value": MANAGED_VALUE} not in tags:
        raise SystemExit(f"secret {secret_id} exists without our tag {MANAGED_TAG}={MANAGED_VALUE}: "
                         "not overwriting it (delete it or pick another JWT_PUBLIC_KEYS_SECRET_ID)")
    return _parse(parse_public_keys_secret, sm.get_secret_value(SecretId=secret_id)["SecretString"], secret_id)


def _parse(parse: Callable[[str, str], KeyRing], text: str, secret_id: str) -> KeyRing:
    try:
        return parse(text, secret_id)
    except ConfigError as exc:  # names the secret and the rule, never its contents
        raise SystemExit(f"deploy step: {exc}") from None
