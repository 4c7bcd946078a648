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


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TARIFF_VAT_RATE", "19"),  # a percentage where a fraction is expected
        ("TARIFF_VAT_RATE", "1"),
        ("TARIFF_VAT_RATE", "-0.01"),
        ("TARIFF_ENERGY_PER_KWH", "-1"),
        ("TARIFF_TIME_PER_HOUR", "-0.01"),
        ("TARIFF_FLAT_FEE", "-2"),
        ("TARIFF_IDLE_PER_HOUR", "-5"),
        ("TARIFF_ENERGY_PER_KWH", "Infinity"),
        ("WALLET_OPENING_BALANCE", "-10"),
        ("WALLET_OPENING_BALANCE", "1000000.01"),
        ("WALLET_FLOOR", "5"),
        ("WALLET_FLOOR", "-1000000.01"),
    ],
)
def test_out_of_range_money_settings_are_refused_at_load(variable, value):
    with pytest.raises(ConfigError) as err:
        load_settings({variable: value})
    assert f"{variable}={value!r} is invalid" in str(err.value)


@pytest.mark.parametrize(
    ("variable", "value", "attribute"),
    [
        ("TARIFF_VAT_RATE", "0", "tariff_vat_rate"),
        ("TARIFF_VAT_RATE", "0.999", "tariff_vat_rate"),
        ("TARIFF_ENERGY_PER_KWH", "0", "tariff_energy_per_kwh"),
        ("TARIFF_ENERGY_PER_KWH", "0.385", "tariff_energy_per_kwh"),
        ("TARIFF_FLAT_FEE", "1.50", "tariff_flat_fee"),
        ("WALLET_FLOOR", "0", "wallet_floor"),
        ("WALLET_FLOOR", "-25.00", "wallet_floor"),
        ("WALLET_OPENING_BALANCE", "1000000", "wallet_opening_balance"),
    ],
)
def test_boundary_money_settings_load(variable, value, attribute):
    assert getattr(load_settings({variable: value}), attribute) == Decimal(value)


def test_every_loaded_tariff_setting_builds_a_tariff():
    """What load accepts, the billing Tariff accepts too (it used to raise later, inside the handler)."""
    from chalicelib.billing.tariffs import Tariff

    settings = load_settings({"TARIFF_VAT_RATE": "0.999", "TARIFF_ENERGY_PER_KWH": "0", "TARIFF_IDLE_PER_HOUR": "0"})
    assert Tariff.from_settings(settings).vat_rate == Decimal("0.999")
