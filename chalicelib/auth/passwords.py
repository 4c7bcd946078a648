"""Password hashing: bcrypt over a SHA-256 pre-hash, so no byte of a long password is ignored.

bcrypt reads at most 72 bytes (bcrypt 5 refuses longer input outright), so a
long passphrase would otherwise be silently truncated. We hash
``base64(sha256(password))`` (44 ASCII bytes, no NUL) with bcrypt instead, as
passlib's ``bcrypt_sha256`` does; the stored value is prefixed with the scheme
so a future change of scheme can be recognised.
"""

from __future__ import annotations

import base64
import hashlib
import threading

import bcrypt

SCHEME = "bcrypt-sha256$"

_dummy_lock = threading.Lock()
_dummy: dict[int, str] = {}


def _prehash(password: str) -> bytes:
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


def hash_password(password: str, cost: int) -> str:
    return SCHEME + bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds=cost)).decode("ascii")


def verify_password(password: str, stored: str) -> bool:
    if not stored.startswith(SCHEME):
        return False
    try:
        return bcrypt.checkpw(_prehash(password), stored[len(SCHEME):].encode("ascii"))
    except ValueError:
        return False


def dummy_hash(cost: int) -> str:
    """A hash of nothing anyone knows, at the same cost, so unknown emails take as long as wrong passwords."""
    with _dummy_lock:
        if cost not in _dummy:
            _dummy[cost] = hash_password(base64.b64encode(bcrypt.gensalt()).decode(), cost)
        return _dummy[cost]
