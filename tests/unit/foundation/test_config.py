from decimal import Decimal

import pytest

from chalicelib.config import ConfigError, load_settings


def test_defaults_are_valid_and_typed():
    settings = load_settings({})
    assert settings.stage == "local"
    assert settings.max_receive_count == 5
    assert settings.tariff_vat_rate == Decimal("0.19")
    assert settings.embedded_store is True


@pytest.mark.parametrize(
    ("env", "variable", "expected"),
    [
        ({"OCM_PAGE_SIZE": "50"}, "OCM_PAGE_SIZE", "between 1000 and 10000"),
        ({"BCRYPT_COST": "twelve"}, "BCRYPT_COST", "an integer"),
        ({"TARIFF_VAT_RATE": "ten percent"}, "TARIFF_VAT_RATE", "decimal"),
        ({"JUCR_STAGE": "staging"}, "JUCR_STAGE", "local, dev, prod"),
        ({"OCM_SYNC_SCHEDULE": "every 6h"}, "OCM_SYNC_SCHEDULE", "rate("),
        ({"BILLING_CURRENCY": "euro"}, "BILLING_CURRENCY", "ISO 4217"),
    ],
)
def test_invalid_value_names_the_variable_and_what_is_expected(env, variable, expected):
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    assert variable in str(err.value)
    assert expected in str(err.value)


def test_secret_values_are_never_echoed():
    with pytest.raises(ConfigError) as err:
        load_settings({"OCM_API_KEY": "k", "MONGODB_TIMEOUT_MS": "x"})
    assert "MONGODB_TIMEOUT_MS" in str(err.value)
    redacted = load_settings({"MONGODB_URI": "mongodb://user:pw@host/", "OCM_API_KEY": "abc"}).redacted()
    assert redacted["mongodb_uri"] == "***"
    assert redacted["ocm_api_key"] == "***"


def test_queue_names_carry_app_and_stage():
    assert load_settings({"JUCR_STAGE": "dev"}).queue_name("billing") == "jucr-dev-billing"
