"""Tariff arithmetic: the OCPI golden case and a table of hand-checked bills."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from chalicelib.billing.settings import BillingSettings
from chalicelib.billing.tariffs import Tariff, Usage, billable_seconds, price, round_cents, to_cents
from chalicelib.config import load_section


def tariff(**prices) -> Tariff:
    return Tariff(tariff_id="t", currency="EUR", **prices)


def test_ocpi_golden_case_time_two_euro_per_hour_step_300s_vat_10_percent():
    # Given TIME 2.00 EUR/h, step 300 s, VAT 10 %; When 1.973 h are charged
    bill = price(tariff(time_per_hour=D("2.00"), time_step_seconds=300, vat_rate=D("0.10")),
                 Usage(energy_kwh=D("0"), duration_seconds=D("1.973") * 3600))
    # Then 7102.8 s round up to 7200 s = 2 h -> 4.00 net, 4.40 gross
    assert [(line.component, line.quantity, line.amount) for line in bill.lines] == [("TIME", D("2.0000"), D("4.00"))]
    assert (bill.net, bill.vat, bill.total) == (D("4.00"), D("0.40"), D("4.40"))


@pytest.mark.parametrize(
    ("prices", "usage", "expected_lines", "net", "vat", "total"),
    [
        # the seed session with the default tariff: 22.4 kWh * 0.39 = 8.736 -> 8.74; VAT 19 % 1.6606 -> 1.66
        (dict(energy_per_kwh=D("0.39"), vat_rate=D("0.19")), Usage(D("22.4"), D(58 * 60)),
         [("ENERGY", "22.4", "8.74")], "8.74", "1.66", "10.40"),
        # half-up at the cent: 0.125 -> 0.13 (banker's rounding would give 0.12)
        (dict(energy_per_kwh=D("0.25"), vat_rate=D("0")), Usage(D("0.5"), D(0)),
         [("ENERGY", "0.5", "0.13")], "0.13", "0.00", "0.13"),
        # time billed per started minute: 61 s at 60 s steps -> 120 s; 3.00/h -> 0.10
        (dict(time_per_hour=D("3.00"), time_step_seconds=60), Usage(D("0"), D(61)),
         [("TIME", "0.0333", "0.10")], "0.10", "0.00", "0.10"),
        # flat fee + energy + time + idle after 10 free minutes, VAT 19 %
        # flat 1.00; energy 10 kWh * 0.30 = 3.00; time 90 min at 15-min steps, 1.20/h = 1.80;
        # idle 25 - 10 = 15 min at 6.00/h = 1.50; net 7.30; VAT 1.387 -> 1.39; gross 8.69
        (dict(flat_fee=D("1.00"), energy_per_kwh=D("0.30"), time_per_hour=D("1.20"), time_step_seconds=900,
              idle_per_hour=D("6.00"), idle_free_minutes=10, vat_rate=D("0.19")),
         Usage(D("10"), D(90 * 60), idle_minutes=25),
         [("FLAT", "1", "1.00"), ("ENERGY", "10", "3.00"), ("TIME", "1.5000", "1.80"),
          ("PARKING_TIME", "0.2500", "1.50")], "7.30", "1.39", "8.69"),
        # idle inside the free minutes costs nothing; zero-priced components produce no line
        (dict(energy_per_kwh=D("0.385"), idle_per_hour=D("6.00"), idle_free_minutes=30, vat_rate=D("0.07")),
         Usage(D("7.77"), D(1800), idle_minutes=30),
         [("ENERGY", "7.77", "2.99")], "2.99", "0.21", "3.20"),
        # nothing consumed, nothing charged
        (dict(energy_per_kwh=D("0.39"), vat_rate=D("0.19")), Usage(D("0"), D(0)),
         [("ENERGY", "0", "0.00")], "0.00", "0.00", "0.00"),
    ],
)
def test_hand_checked_bills(prices, usage, expected_lines, net, vat, total):
    bill = price(tariff(**prices), usage)
    assert [(line.component, str(line.quantity), str(line.amount)) for line in bill.lines] == expected_lines
    assert (str(bill.net), str(bill.vat), str(bill.total)) == (net, vat, total)
    assert bill.net == sum(line.amount for line in bill.lines)


def test_step_rounds_up_never_down():
    assert billable_seconds(D(1), 300) == 300
    assert billable_seconds(D(300), 300) == 300
    assert billable_seconds(D("300.001"), 300) == 600
    assert billable_seconds(D(0), 300) == 0


def test_cents_are_exact_and_half_up():
    assert round_cents(D("2.675")) == D("2.68")
    assert round_cents(D("-2.675")) == D("-2.68")
    assert to_cents(D("39.60")) == 3960
    with pytest.raises(ValueError):
        to_cents(D("0.001"))


def test_default_tariff_comes_from_settings_and_roundtrips_through_the_store_shape():
    settings = load_section(BillingSettings, {"TARIFF_TIME_PER_HOUR": "1.50", "TARIFF_FLAT_FEE": "0.99"})
    default = Tariff.from_settings(settings)
    assert (default.energy_per_kwh, default.time_per_hour, default.flat_fee, default.vat_rate) == (
        D("0.39"), D("1.50"), D("0.99"), D("0.19"))
    stored = default.to_document()
    assert stored["energyPerKwh"] == "0.39" and isinstance(stored["timeStepSeconds"], int)
    assert Tariff.from_document({"_id": "st-1", **stored}) == default


@pytest.mark.parametrize("bad", [dict(vat_rate=D("19")), dict(energy_per_kwh=D("-1")), dict(time_step_seconds=0)])
def test_invalid_tariffs_are_refused(bad):
    with pytest.raises(ValueError):
        tariff(**bad)
