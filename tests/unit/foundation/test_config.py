"""Settings sections: defaults, the rule each variable must meet, and what an error may show."""

import logging
from decimal import Decimal

import pytest

from chalicelib.auth.settings import AuthSettings
from chalicelib.billing.settings import BillingSettings
from chalicelib.config import ConfigError, CoreSettings, ScheduleSettings, load_section, resource_name
from chalicelib.events.settings import QueueSettings
from chalicelib.ocm.settings import OcmSettings
from chalicelib.sections import SECTIONS, load_stage_settings
from chalicelib.store.settings import StoreSettings


def test_defaults_are_valid_and_typed():
    stage = load_stage_settings({})
    assert stage.core.stage == "local"
    assert stage.queue.max_receive_count == 5
    assert stage.billing.tariff_vat_rate == Decimal("0.19") and isinstance(stage.billing.wallet_floor, Decimal)
    assert stage.store.embedded_store is True
    assert [type(section) for section in stage.sections()] == list(SECTIONS)


@pytest.mark.parametrize(
    ("section", "env", "variable", "expected"),
    [
        (OcmSettings, {"OCM_PAGE_SIZE": "50"}, "OCM_PAGE_SIZE", "an integer between 1000 and 10000"),
        (AuthSettings, {"BCRYPT_COST": "twelve"}, "BCRYPT_COST", "an integer between 4 and 16"),
        (BillingSettings, {"TARIFF_VAT_RATE": "ten percent"}, "TARIFF_VAT_RATE", "a decimal number in [0, 1)"),
        (CoreSettings, {"JUCR_STAGE": "staging"}, "JUCR_STAGE", "one of local, dev, prod, test"),
        (ScheduleSettings, {"OCM_SYNC_SCHEDULE": "every 6h"}, "OCM_SYNC_SCHEDULE", "'off', 'rate(N minutes"),
        (BillingSettings, {"BILLING_CURRENCY": "euro"}, "BILLING_CURRENCY", "an ISO 4217 currency code"),
        (StoreSettings, {"MONGODB_URI_SECRET_ID": "arn:aws:secretsmanager:x"}, "MONGODB_URI_SECRET_ID",
         "a Secrets Manager secret name"),
        (CoreSettings, {"LOG_LEVEL": "verbose"}, "LOG_LEVEL", "one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        (CoreSettings, {"LOG_LEVEL": "INFO "}, "LOG_LEVEL", "one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ],
)
def test_invalid_value_names_the_variable_and_what_is_expected(section, env, variable, expected):
    with pytest.raises(ConfigError) as err:
        load_section(section, env)
    assert f"{variable}={env[variable]!r} is invalid: expected {expected}" in str(err.value)


def test_every_bad_value_of_a_section_is_named_at_once_and_the_whole_stage_names_all_sections():
    with pytest.raises(ConfigError) as err:
        load_section(QueueSettings, {"SQS_MAX_RECEIVE_COUNT": "0", "SQS_BACKOFF_CAP_SECONDS": "x"})
    assert "SQS_MAX_RECEIVE_COUNT='0'" in str(err.value) and "SQS_BACKOFF_CAP_SECONDS='x'" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_stage_settings({"TARIFF_VAT_RATE": "19", "OCM_PAGE_SIZE": "5"})
    assert "TARIFF_VAT_RATE='19'" in str(err.value) and "OCM_PAGE_SIZE='5'" in str(err.value)


def test_a_section_reads_only_its_own_variables():
    assert load_section(CoreSettings, {"TARIFF_VAT_RATE": "19", "OCM_PAGE_SIZE": "5"}).stage == "local"


def test_secret_values_are_never_echoed():
    with pytest.raises(ConfigError) as err:
        load_section(StoreSettings, {"MONGODB_URI": "mongodb://user:pw@host/", "MONGODB_TIMEOUT_MS": "x"})
    assert "MONGODB_TIMEOUT_MS='x'" in str(err.value) and "pw@" not in str(err.value)
    redacted = load_stage_settings({"MONGODB_URI": "mongodb://user:pw@host/", "OCM_API_KEY": "abc"}).redacted()
    assert redacted["store"]["mongodb_uri"] == "***"
    assert redacted["ocm"]["ocm_api_key"] == "***"
    assert redacted["store"]["mongodb_db"] == "jucr" and redacted["auth"]["jwt_private_key"] == ""  # unset: shown


def test_resource_names_carry_app_and_stage():
    core = load_section(CoreSettings, {"JUCR_STAGE": "dev"})
    assert (core.queue_name("billing"), core.resource_name("alarms"), core.prefix) == (
        "jucr-dev-billing", "jucr-dev-alarms", "jucr-dev")
    assert resource_name("acme", "prod", "wallets-dlq") == "acme-prod-wallets-dlq"


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
        ("TARIFF_ENERGY_PER_KWH", "NaN"),
        ("WALLET_OPENING_BALANCE", "-10"),
        ("WALLET_OPENING_BALANCE", "1000000.01"),
        ("WALLET_FLOOR", "5"),
        ("WALLET_FLOOR", "-1000000.01"),
    ],
)
def test_out_of_range_money_settings_are_refused_at_load(variable, value):
    with pytest.raises(ConfigError) as err:
        load_section(BillingSettings, {variable: value})
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
def test_boundary_money_settings_load_exactly(variable, value, attribute):
    loaded = getattr(load_section(BillingSettings, {variable: value}), attribute)
    assert loaded == Decimal(value) and str(loaded) == value  # Decimal as written, never a float


def test_every_loaded_tariff_setting_builds_a_tariff():
    """What load accepts, the billing Tariff accepts too (it used to raise later, inside the handler)."""
    from chalicelib.billing.tariffs import Tariff

    settings = load_section(BillingSettings, {"TARIFF_VAT_RATE": "0.999", "TARIFF_ENERGY_PER_KWH": "0",
                                              "TARIFF_IDLE_PER_HOUR": "0"})
    assert Tariff.from_settings(settings).vat_rate == Decimal("0.999")


@pytest.mark.parametrize(("value", "level"), [("debug", logging.DEBUG), ("WARNING", logging.WARNING),
                                              ("Error", logging.ERROR)])
def test_a_valid_log_level_in_any_case_is_what_powertools_applies(monkeypatch, value, level):
    """The section validates LOG_LEVEL; Powertools' Logger reads the same variable (no code of ours passes it)."""
    from aws_lambda_powertools import Logger

    assert load_section(CoreSettings, {"LOG_LEVEL": value}).log_level == value
    monkeypatch.delenv("POWERTOOLS_LOG_LEVEL", raising=False)
    monkeypatch.delenv("AWS_LAMBDA_LOG_LEVEL", raising=False)
    monkeypatch.setenv("LOG_LEVEL", value)
    assert Logger(service=f"jucr-level-{value}").log_level == level
