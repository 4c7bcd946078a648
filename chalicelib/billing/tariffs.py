"""Tariffs in the style of OCPI 2.2.1 and the arithmetic that turns a session into a bill.

Pure functions on ``Decimal``: no store, no clock. Every money amount is rounded
once, explicitly, ``ROUND_HALF_UP`` at the cent: each line is rounded, the net is
the sum of the rounded lines (so the lines a person reads add up), VAT is the
rounded rate times the net. Time is billed in ``step_seconds`` blocks rounded
*up* (OCPI ``step_size``): the golden case of DESIGN.md, TIME 2.00 EUR/h, step
300 s, 1.973 h -> 7102.8 s -> 7200 s -> 4.00 net, 0.40 VAT, 4.40 gross.

Unit prices may carry sub-cent digits (0.385 EUR/kWh is common), so a tariff is
stored with its prices as decimal strings (exact, never float); every *amount*
(line, net, VAT, total) is integer cents in the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any

from chalicelib.billing.settings import BillingSettings

CENT = Decimal("0.01")
HOUR = Decimal(3600)
QUANTITY_PLACES = Decimal("0.0001")


def round_cents(amount: Decimal) -> Decimal:
    """Round to the cent, half up (0.005 -> 0.01), as OCPI and invoices expect."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def to_cents(amount: Decimal) -> int:
    """Integer minor units for the store; refuses amounts that are not whole cents."""
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of cents")
    return int(cents)


def from_cents(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(CENT)


def money_text(cents: int) -> str:
    """The decimal string clients see ("39.60")."""
    return f"{from_cents(cents):.2f}"


class MalformedTariff(ValueError):
    """A tariff field is missing, unreadable or breaks a rule; ``field`` names it as stored (camelCase).

    The message names the field and the rule, never the value: a stored tariff is data anyone
    with write access to ``tariffs`` chose, and the message ends up in dead letters and events.
    """

    def __init__(self, field: str, rule: str = "missing or not readable") -> None:
        super().__init__(f"tariff field {field}: {rule}")
        self.field = field


def _camel(name: str) -> str:
    return "".join(part.capitalize() if i else part for i, part in enumerate(name.split("_")))


@dataclass(frozen=True)
class Tariff:
    """One station's price list. Zero prices mean "component not charged"."""

    tariff_id: str
    currency: str
    energy_per_kwh: Decimal = Decimal("0")
    time_per_hour: Decimal = Decimal("0")
    time_step_seconds: int = 60
    flat_fee: Decimal = Decimal("0")
    idle_per_hour: Decimal = Decimal("0")
    idle_free_minutes: int = 0
    vat_rate: Decimal = Decimal("0")

    def __post_init__(self) -> None:
        for name in ("energy_per_kwh", "time_per_hour", "flat_fee", "idle_per_hour", "vat_rate"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise MalformedTariff(_camel(name), "must be a non-negative Decimal")
        if self.vat_rate >= 1:
            raise MalformedTariff("vatRate", "is a fraction (0.19), not a percentage")
        if self.time_step_seconds < 1:
            raise MalformedTariff("timeStepSeconds", "must be >= 1")
        if self.idle_free_minutes < 0:
            raise MalformedTariff("idleFreeMinutes", "must be >= 0")

    @classmethod
    def from_settings(cls, settings: BillingSettings) -> Tariff:
        """The default tariff (settings ``TARIFF_*``) for stations without their own."""
        return cls(
            tariff_id="default",
            currency=settings.currency,
            energy_per_kwh=settings.tariff_energy_per_kwh,
            time_per_hour=settings.tariff_time_per_hour,
            time_step_seconds=settings.tariff_time_step_seconds,
            flat_fee=settings.tariff_flat_fee,
            idle_per_hour=settings.tariff_idle_per_hour,
            idle_free_minutes=settings.tariff_idle_free_minutes,
            vat_rate=settings.tariff_vat_rate,
        )

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Tariff:
        """A tariff stored in the ``tariffs`` collection (``_id`` = stationId, prices as decimal strings).

        Raises :class:`MalformedTariff` naming the first field that is missing or unreadable.
        """
        values: dict[str, Any] = {}
        for field, parse, default in _DOCUMENT_FIELDS:
            try:
                values[field] = parse(doc[_camel(field)] if default is None else doc.get(_camel(field), default))
            except (KeyError, TypeError, ValueError, ArithmeticError):
                raise MalformedTariff(_camel(field)) from None
        tariff_id = doc.get("tariffId") or doc.get("_id")
        if tariff_id is None:
            raise MalformedTariff("tariffId")
        return cls(tariff_id=str(tariff_id), **values)

    def to_document(self) -> dict[str, Any]:
        """The copy kept on each invoice, so a later tariff change never alters an issued invoice."""
        return {_camel(key): str(value) if isinstance(value, Decimal) else value for key, value in asdict(self).items()}


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value))


# Tariff attribute, parser, default (None: required) of a stored tariff document; keys are the camelCase.
_DOCUMENT_FIELDS: tuple[tuple[str, Any, Any], ...] = (
    ("currency", str, None), ("energy_per_kwh", _decimal, "0"), ("time_per_hour", _decimal, "0"),
    ("time_step_seconds", int, 60), ("flat_fee", _decimal, "0"), ("idle_per_hour", _decimal, "0"),
    ("idle_free_minutes", int, 0), ("vat_rate", _decimal, "0"),
)


@dataclass(frozen=True)
class Usage:
    """What a session consumed, as the pricing needs it."""

    energy_kwh: Decimal
    duration_seconds: Decimal
    idle_minutes: int = 0


@dataclass(frozen=True)
class Line:
    component: str  # ENERGY, TIME, FLAT, PARKING_TIME (OCPI dimension names)
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal

    def to_document(self) -> dict[str, Any]:
        return {"component": self.component, "quantity": str(self.quantity), "unitPrice": str(self.unit_price),
                "amountCents": to_cents(self.amount)}


@dataclass(frozen=True)
class Bill:
    lines: tuple[Line, ...]
    net: Decimal
    vat: Decimal
    total: Decimal
    vat_rate: Decimal
    currency: str


def billable_seconds(seconds: Decimal, step_seconds: int) -> Decimal:
    """Round a duration up to whole ``step_seconds`` blocks (OCPI ``step_size``)."""
    if seconds <= 0:
        return Decimal(0)
    blocks = (seconds / step_seconds).to_integral_value(rounding=ROUND_CEILING)
    return blocks * step_seconds


def price(tariff: Tariff, usage: Usage) -> Bill:
    """Price one session: lines for each charged component, net, VAT and gross."""
    lines: list[Line] = []
    if tariff.flat_fee > 0:
        lines.append(Line("FLAT", Decimal(1), tariff.flat_fee, round_cents(tariff.flat_fee)))
    if tariff.energy_per_kwh > 0:
        lines.append(Line("ENERGY", usage.energy_kwh, tariff.energy_per_kwh,
                          round_cents(usage.energy_kwh * tariff.energy_per_kwh)))
    if tariff.time_per_hour > 0:
        seconds = billable_seconds(usage.duration_seconds, tariff.time_step_seconds)
        lines.append(Line("TIME", (seconds / HOUR).quantize(QUANTITY_PLACES, rounding=ROUND_HALF_UP),
                          tariff.time_per_hour, round_cents(seconds * tariff.time_per_hour / HOUR)))
    idle_minutes = max(0, usage.idle_minutes - tariff.idle_free_minutes)
    if tariff.idle_per_hour > 0 and idle_minutes > 0:
        hours = Decimal(idle_minutes) / 60
        lines.append(Line("PARKING_TIME", hours.quantize(QUANTITY_PLACES, rounding=ROUND_HALF_UP),
                          tariff.idle_per_hour, round_cents(Decimal(idle_minutes) * tariff.idle_per_hour / 60)))
    net = sum((line.amount for line in lines), Decimal("0.00"))
    vat = round_cents(net * tariff.vat_rate)
    return Bill(tuple(lines), net, vat, net + vat, tariff.vat_rate, tariff.currency)
