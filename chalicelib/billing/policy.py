"""What every billing step is handed: the policy from settings, the ports, the ids derived from a session.

Business logic takes its store, publisher and clock as arguments (``BillingDeps``),
so tests and the bench drive it with their own and crash it between steps
through ``checkpoint``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from chalicelib.billing.repository import BillingRepository
from chalicelib.billing.settings import BillingSettings
from chalicelib.billing.tariffs import Tariff, round_cents, to_cents

# WalletNotOpen's class name travels as the dead letter's errorType, which the reconciler reads as
# "early, re-drive"; re-exported here because billing's callers and tests name it from billing.
from chalicelib.contracts.errors import WalletNotOpen as WalletNotOpen
from chalicelib.events.publisher import Publisher
from chalicelib.timestamps import aware_utc

INVOICE_NAMESPACE = uuid.UUID("3d0f2c55-7a0e-4b8e-a3c9-6c1f4f7f9b21")


def invoice_id_for(session_id: str) -> str:
    """The invoice's ``_id``: derived from the session, so every delivery of it names the same invoice."""
    return str(uuid.uuid5(INVOICE_NAMESPACE, f"invoice:{session_id}"))


def ledger_entry_id(wallet_id: str, session_id: str) -> str:
    """One ledger entry per (wallet, session): the id is the pair, so a second insert is refused."""
    return f"{wallet_id}:{session_id}"


def ms(value: dt.datetime) -> dt.datetime:
    """BSON keeps milliseconds: truncate first so what we publish equals what we stored."""
    value = aware_utc(value)
    return value.astimezone(dt.UTC).replace(microsecond=value.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class BillingPolicy:
    """Rules from settings: money in cents (default tariff, currency, floor, opening credit) and how old or
    how far ahead of the clock a session's ``endedAt`` may be before it is refused as implausible."""

    default_tariff: Tariff
    currency: str
    floor_cents: int
    opening_balance_cents: int
    max_session_age: dt.timedelta = dt.timedelta(days=30)
    clock_skew: dt.timedelta = dt.timedelta(seconds=300)

    @classmethod
    def from_settings(cls, settings: BillingSettings) -> BillingPolicy:
        return cls(
            default_tariff=Tariff.from_settings(settings),
            currency=settings.currency,
            floor_cents=to_cents(round_cents(settings.wallet_floor)),
            opening_balance_cents=to_cents(round_cents(settings.wallet_opening_balance)),
            max_session_age=dt.timedelta(days=settings.session_max_age_days),
            clock_skew=dt.timedelta(seconds=settings.session_clock_skew_seconds),
        )


def _no_checkpoint(step: str) -> None:
    """Production runs every step without interruption; tests and the chaos run replace this."""


@dataclass
class BillingDeps:
    """The ports billing runs on; ``checkpoint(step)`` is called after each step (tests crash there)."""

    repo: BillingRepository
    publisher: Publisher
    clock: Callable[[], dt.datetime]
    policy: BillingPolicy
    checkpoint: Callable[[str], None] = field(default=_no_checkpoint)

    def now(self) -> dt.datetime:
        return ms(self.clock())
