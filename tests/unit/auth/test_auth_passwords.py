"""Passwords: bcrypt with cost from settings, no silent truncation at 72 bytes."""

from __future__ import annotations

import bcrypt

from chalicelib.auth.passwords import SCHEME, dummy_hash, hash_password, verify_password


def test_hash_uses_the_configured_cost_and_verifies():
    stored = hash_password("correct horse battery", 5)
    assert stored.startswith(SCHEME + "$2b$05$")
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterz", stored)


def test_passwords_longer_than_72_bytes_are_not_truncated():
    base = "ü" * 40  # 80 bytes in UTF-8: past bcrypt's 72
    stored = hash_password(base + "A", 4)
    assert verify_password(base + "A", stored)
    assert not verify_password(base + "B", stored)
    assert not verify_password(base, stored)


def test_plain_bcrypt_would_have_refused_or_truncated_so_prehash_matters():
    long = ("x" * 80).encode()
    try:
        bcrypt.hashpw(long, bcrypt.gensalt(4))
    except ValueError:
        refused = True
    else:
        refused = False
    assert refused  # bcrypt 5 refuses > 72 bytes; our scheme accepts them (test above)


def test_unknown_scheme_or_garbage_never_verifies():
    assert not verify_password("anything", "plain-text")
    assert not verify_password("anything", SCHEME + "garbage")


def test_dummy_hash_has_the_same_cost_and_is_cached():
    assert dummy_hash(4) == dummy_hash(4)
    assert dummy_hash(4).startswith(SCHEME + "$2b$04$")
