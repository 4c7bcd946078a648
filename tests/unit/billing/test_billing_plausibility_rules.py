"""The plausibility rules on their own: when a session may have ended, whose it is, whether it is the one billed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest

from chalicelib.billing import plausibility
from chalicelib.billing.plausibility import (
    AHEAD,
    OTHER_USAGE,
    OTHER_USER,
    TOO_OLD,
    UNKNOWN_USER,
    SessionImplausible,
    reuse_problem,
    timing_problem,
    usage_of_event,
    usage_of_invoice,
)
from chalicelib.billing.policy import BillingPolicy, WalletNotOpen
from chalicelib.billing.session_state import SessionBill, SessionRequest
from chalicelib.billing.settings import BillingSettings
from chalicelib.config import ConfigError, load_section
from chalicelib.contracts.errors import SessionReused
from chalicelib.contracts.events import parse_event

NOW = dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=dt.UTC)
SESSION = {"sessionId": "6fe27f6e-ff2d-4dda-9f86-3de70e1a4bbf", "userId": "0b1732fa-631a-4952-b6d6-2d586ed9dbf8",
           "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f", "energyKwh": 22.4, "durationMinutes": 58,
           "endedAt": "2026-12-01T11:00:00.123456Z"}
# As _draft stores it and the store hands it back: energy as text, endedAt cut to milliseconds.
STORED = {"userId": SESSION["userId"], "stationId": SESSION["stationId"],
          "usage": {"energyKwh": "22.4", "durationMinutes": 58, "idleMinutes": 0,
                    "endedAt": dt.datetime(2026, 12, 1, 11, 0, 0, 123000, tzinfo=dt.UTC)}}


def policy(**over) -> BillingPolicy:
    return BillingPolicy.from_settings(load_section(BillingSettings, over))


def payload(**over) -> dict:
    return parse_event("SESSION_ENDED", {**SESSION, **over}).payload


def bill(final: bool = False, **over) -> SessionBill:
    return SessionBill(SessionRequest(parse_event("SESSION_ENDED", {**SESSION, **over}), final_attempt=final))


def test_the_settings_default_to_30_days_and_300_seconds_and_reach_the_policy():
    rules = policy()
    assert (rules.max_session_age, rules.clock_skew) == (dt.timedelta(days=30), dt.timedelta(seconds=300))
    rules = policy(SESSION_MAX_AGE_DAYS="2", SESSION_CLOCK_SKEW_SECONDS="0")
    assert (rules.max_session_age, rules.clock_skew) == (dt.timedelta(days=2), dt.timedelta(0))


@pytest.mark.parametrize(("variable", "value"), [
    ("SESSION_MAX_AGE_DAYS", "0"), ("SESSION_MAX_AGE_DAYS", "366"), ("SESSION_MAX_AGE_DAYS", "ten"),
    ("SESSION_CLOCK_SKEW_SECONDS", "-1"), ("SESSION_CLOCK_SKEW_SECONDS", "3601"),
])
def test_settings_out_of_range_stop_start_up_naming_the_variable(variable, value):
    with pytest.raises(ConfigError, match=variable):
        load_section(BillingSettings, {variable: value})


@pytest.mark.parametrize(("ended_at", "problem"), [
    (NOW - dt.timedelta(days=30), None),  # exactly the maximum age: still billed
    (NOW - dt.timedelta(days=30, milliseconds=1), TOO_OLD),
    (dt.datetime(2019, 6, 1, tzinfo=dt.UTC), TOO_OLD),
    (NOW, None),
    (NOW + dt.timedelta(seconds=300), None),  # exactly the skew: a producer's clock a little ahead
    (NOW + dt.timedelta(seconds=300, milliseconds=1), AHEAD),
    (NOW + dt.timedelta(days=365), AHEAD),
])
def test_ended_at_must_lie_between_the_maximum_age_and_the_clock_skew(ended_at, problem):
    assert timing_problem(ended_at, NOW, policy()) == problem


def test_the_limits_follow_the_settings():
    assert timing_problem(NOW - dt.timedelta(days=2), NOW, policy(SESSION_MAX_AGE_DAYS="1")) == TOO_OLD
    assert timing_problem(NOW + dt.timedelta(seconds=1), NOW, policy(SESSION_CLOCK_SKEW_SECONDS="0")) == AHEAD


def test_reasons_name_the_rule_never_a_value():
    for reason in (TOO_OLD, AHEAD, UNKNOWN_USER):
        assert "SESSION" in reason or "userId" in reason
        assert not any(char.isdigit() for char in reason)
        # "wallet not found/open" would make the reconciler re-drive instead of compensating
        assert "wallet not" not in reason.lower()


def test_check_times_refuses_only_sessions_not_invoiced_yet():
    old, resumed, fine = bill(endedAt="2019-06-01T00:00:00Z"), bill(endedAt="2019-06-01T00:00:00Z"), bill()
    resumed.invoice = {"_id": resumed.invoice_id}  # stored by an earlier delivery: it resumes whatever its age
    plausibility.check_times(SimpleNamespace(now=lambda: NOW, policy=policy()), [old, resumed, fine])
    assert isinstance(old.error, SessionImplausible) and str(old.error) == TOO_OLD
    assert resumed.error is None and fine.error is None


def test_a_missing_wallet_is_early_until_the_last_receive_then_an_unknown_user():
    early, last, known = bill(), bill(final=True), bill(final=True)
    early.wallet_open = last.wallet_open = False
    known.wallet_open = True
    plausibility.check_users(SimpleNamespace(), [early, last, known])
    assert isinstance(early.error, WalletNotOpen)
    assert isinstance(last.error, SessionImplausible) and str(last.error) == UNKNOWN_USER
    assert known.error is None


def test_an_identical_session_is_the_one_billed_however_its_numbers_are_written():
    assert reuse_problem(payload(), SESSION["userId"], usage_of_invoice(STORED)) is None
    # the same usage, written differently: 22.40 kWh, idleMinutes 0 spelled out
    assert reuse_problem(payload(energyKwh="22.40", idleMinutes=0), SESSION["userId"], usage_of_invoice(STORED)) is None
    assert usage_of_event(payload())["energyKwh"] == Decimal("22.4")


def test_another_user_is_a_reused_session_id():
    problem = reuse_problem(payload(), "11111111-1111-4111-8111-111111111111", usage_of_invoice(STORED))
    assert isinstance(problem, SessionReused) and str(problem) == OTHER_USER


@pytest.mark.parametrize(("field", "value"), [
    ("energyKwh", 22.5), ("durationMinutes", 59), ("stationId", "another-station"),
    ("endedAt", "2026-12-01T11:00:01.123Z"), ("idleMinutes", 5),
])
def test_other_usage_is_a_reused_session_id_naming_the_field_not_the_value(field, value):
    problem = reuse_problem(payload(**{field: value}), SESSION["userId"], usage_of_invoice(STORED))
    assert isinstance(problem, SessionReused)
    assert str(problem) == f"{OTHER_USAGE} ({field})"
    assert str(value) not in str(problem)


def test_a_stored_invoice_without_its_usage_is_never_taken_for_this_session():
    broken = {"userId": SESSION["userId"], "stationId": SESSION["stationId"], "usage": {"energyKwh": "lots"}}
    problem = reuse_problem(payload(), SESSION["userId"], usage_of_invoice(broken))
    assert isinstance(problem, SessionReused) and "energyKwh" in str(problem) and "endedAt" in str(problem)
