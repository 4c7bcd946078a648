"""Stored and parsed times become aware UTC the same way everywhere; anything else is not a time."""

from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.timestamps import aware_utc, parse_utc

BERLIN = dt.timezone(dt.timedelta(hours=1))


def test_a_naive_stored_time_is_read_as_utc_and_an_aware_one_is_kept():
    assert aware_utc(dt.datetime(2026, 2, 21, 14, 31)) == dt.datetime(2026, 2, 21, 14, 31, tzinfo=dt.UTC)
    berlin = dt.datetime(2026, 2, 21, 15, 31, tzinfo=BERLIN)
    assert aware_utc(berlin) is berlin


@pytest.mark.parametrize("value", [None, "2026-02-21T14:31:00Z", 1771684260, dt.date(2026, 2, 21)])
def test_anything_but_a_datetime_is_no_time(value):
    assert aware_utc(value) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-02-21T14:31:00Z", dt.datetime(2026, 2, 21, 14, 31, tzinfo=dt.UTC)),
    ("2026-02-21T14:31:00", dt.datetime(2026, 2, 21, 14, 31, tzinfo=dt.UTC)),
    ("2026-02-21T15:31:00+01:00", dt.datetime(2026, 2, 21, 14, 31, tzinfo=dt.UTC)),
])
def test_iso_text_is_parsed_with_no_offset_meaning_utc(text, expected):
    parsed = parse_utc(text)
    assert parsed == expected and parsed.tzinfo is not None


@pytest.mark.parametrize("text", ["yesterday", "", " 2026-02-21T14:31:00Z", None, 42])
def test_what_is_not_iso_text_is_none_and_never_raises(text):
    assert parse_utc(text) is None
