"""The throttle's document ids: HMAC-SHA256 under the stage's pepper, and where that pepper may come from."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from chalicelib.auth import throttle
from chalicelib.auth.settings import AuthSettings
from chalicelib.config import ConfigError, load_section

A, B = b"a" * 32, b"b" * 32
EMAIL, SOURCE = "driver@example.com", "net-a"


def _hmac(pepper: bytes, message: str) -> str:
    return hmac.new(pepper, message.encode(), hashlib.sha256).hexdigest()


def test_each_key_is_the_documented_hmac_of_its_prefix_and_inputs():
    pair = throttle.pair_key(A, EMAIL, SOURCE)
    assert pair == _hmac(A, f"login-pair:{EMAIL}\n{SOURCE}")
    assert throttle.pair_key(A, EMAIL, None) == _hmac(A, f"login-pair:{EMAIL}\n")
    assert throttle.source_key(A, SOURCE) == _hmac(A, f"login-source:{SOURCE}")
    assert throttle.trusted_key(A, pair) == _hmac(A, f"login-trusted:{pair}")
    assert pair != hashlib.sha256(f"login-pair:{EMAIL}\n{SOURCE}".encode()).hexdigest()  # not the old plain hash


def test_keys_differ_under_different_peppers():
    assert throttle.pair_key(A, EMAIL, SOURCE) != throttle.pair_key(B, EMAIL, SOURCE)
    assert throttle.source_key(A, SOURCE) != throttle.source_key(B, SOURCE)
    assert throttle.trusted_key(A, "p") != throttle.trusted_key(B, "p")


@pytest.mark.parametrize("stage", ["local", "test"])
def test_local_and_test_fall_back_to_the_fixed_dev_pepper(stage):
    assert throttle.login_pepper("", stage) == throttle.DEV_LOGIN_PEPPER


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_deployed_stages_refuse_to_start_without_a_pepper_naming_both_variables(stage):
    with pytest.raises(ConfigError, match="LOGIN_KEY_PEPPER_SECRET_ID or LOGIN_KEY_PEPPER"):
        throttle.login_pepper("", stage)


def test_a_configured_pepper_is_used_as_given_and_must_not_be_short():
    assert throttle.login_pepper("x" * 64, "prod") == b"x" * 64
    with pytest.raises(ConfigError, match="at least 32") as refused:
        throttle.login_pepper("short-secret", "test")
    assert "short-secret" not in str(refused.value)


def test_the_plain_pepper_is_a_secret_setting_and_never_shown():
    section = load_section(AuthSettings, {"LOGIN_KEY_PEPPER": "p" * 40, "LOGIN_KEY_PEPPER_SECRET_ID": "jucr/x/pepper"})
    assert section.redacted()["login_key_pepper"] == "***"
    assert section.login_key_pepper_secret_id == "jucr/x/pepper"
    policy = throttle.LoginThrottle.from_settings(section, b"p" * 40)
    assert "ppp" not in repr(policy)
