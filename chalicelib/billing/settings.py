"""Billing's settings: the default tariff, the wallet rules and which sessions are plausible.

Money is Decimal, checked here at start-up, so a bad value stops the billing Lambdas
with the variable's name instead of failing later inside a handler, and stops only
them: the authorizer and the other resolvers never load this section.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from chalicelib.config import Section, decimal, integer, matching, setting


def _non_negative():
    return decimal(Decimal(0))


@dataclass(frozen=True)
class BillingSettings(Section):
    """Read by ``billing_consumer`` and ``wallet_opener``; the billing resolver only reads invoices and needs none."""

    name: ClassVar[str] = "billing"

    currency: str = setting("BILLING_CURRENCY", "EUR", matching("[A-Z]{3}", "an ISO 4217 currency code such as EUR"))
    wallet_opening_balance: Decimal = setting("WALLET_OPENING_BALANCE", "0", decimal(Decimal(0), Decimal(1_000_000)))
    # The balance never goes below the floor; 0 = no credit, negative = overdraft up to that amount.
    # A positive floor would refuse every session of a new wallet at the default opening balance.
    wallet_floor: Decimal = setting("WALLET_FLOOR", "0", decimal(Decimal(-1_000_000), Decimal(0)))
    tariff_energy_per_kwh: Decimal = setting("TARIFF_ENERGY_PER_KWH", "0.39", _non_negative())
    tariff_time_per_hour: Decimal = setting("TARIFF_TIME_PER_HOUR", "0", _non_negative())
    tariff_time_step_seconds: int = setting("TARIFF_TIME_STEP_SECONDS", "60", integer(1, 3600))
    tariff_flat_fee: Decimal = setting("TARIFF_FLAT_FEE", "0", _non_negative())
    tariff_idle_per_hour: Decimal = setting("TARIFF_IDLE_PER_HOUR", "0", _non_negative())
    tariff_idle_free_minutes: int = setting("TARIFF_IDLE_FREE_MINUTES", "0", integer(0, 1440))
    # A fraction, not a percentage: TARIFF_VAT_RATE=19 would bill 1900 % VAT.
    tariff_vat_rate: Decimal = setting("TARIFF_VAT_RATE", "0.19", decimal(Decimal(0), Decimal(1), hi_open=True))
    # A session that ended longer ago, or later than now plus the skew, is refused (permanent, audited).
    session_max_age_days: int = setting("SESSION_MAX_AGE_DAYS", "30", integer(1, 365))
    session_clock_skew_seconds: int = setting("SESSION_CLOCK_SKEW_SECONDS", "300", integer(0, 3600))
