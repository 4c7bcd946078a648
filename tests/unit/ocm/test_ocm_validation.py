"""Record validation rules, stated one by one (the fixture-wide cases are in test_ocm_mapping)."""

from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.ocm import validation

BASE = {"ID": 7, "AddressInfo": {"Latitude": 52.5, "Longitude": 13.4}}


def _with(**fields):
    return {**BASE, **fields}


def _problems(record) -> dict[str, str]:
    with pytest.raises(validation.Invalid) as info:
        validation.load(record)
    return info.value.problems


def test_absent_fields_get_their_defaults_and_numbers_are_floats():
    loaded = validation.load({"ID": 7, "AddressInfo": {"Latitude": 52, "Longitude": "13.4"}})
    assert loaded["Connections"] == [] and loaded["MetadataValues"] is None and loaded["UUID"] is None
    assert loaded["AddressInfo"]["Latitude"] == 52.0 and isinstance(loaded["AddressInfo"]["Latitude"], float)
    assert loaded["AddressInfo"]["Longitude"] == 13.4
    assert validation.load(_with(Connections=None))["Connections"] is None  # sent as null: kept null


def test_dates_are_aware_and_a_naive_one_is_taken_as_utc():
    loaded = validation.load(_with(DateCreated="2020-09-15T10:10:00", DateLastStatusUpdate="2020-09-15T10:10:00Z"))
    assert loaded["DateCreated"] == loaded["DateLastStatusUpdate"] == dt.datetime(2020, 9, 15, 10, 10, tzinfo=dt.UTC)
    assert "DateCreated" in _problems(_with(DateCreated="last tuesday"))


@pytest.mark.parametrize(("record", "field"), [
    (_with(ID=True), "ID"),                                       # a bool is not an id
    (_with(ID=0), "ID"),
    (_with(NumberOfPoints=100001), "NumberOfPoints"),
    (_with(AddressInfo={"Latitude": float("nan"), "Longitude": 1}), "AddressInfo.Latitude"),
    (_with(AddressInfo={"Latitude": 1, "Longitude": "east"}), "AddressInfo.Longitude"),
    (_with(AddressInfo={"Latitude": None, "Longitude": 1}), "AddressInfo.Latitude"),
    (_with(AddressInfo="Berlin"), "AddressInfo._schema"),
    (_with(Connections=[None]), "Connections.0"),
    (_with(Connections=[{"Quantity": -1}]), "Connections.0.Quantity"),
    (_with(Connections="two"), "Connections"),
    (_with(MetadataValues=["note"]), "MetadataValues.0"),
    (_with(OperatorInfo=["GreenLots"]), "OperatorInfo"),
    (_with(UUID=42), "UUID"),
])
def test_each_rule_names_its_field(record, field):
    assert field in _problems(record)


def test_every_problem_is_reported_at_once_without_the_values():
    problems = _problems({"ID": "x-secret", "AddressInfo": {"Latitude": 0, "Longitude": 0},
                          "Connections": [{"PowerKW": 9999}]})
    assert set(problems) == {"ID", "AddressInfo.Latitude", "Connections.0.PowerKW"}
    assert "x-secret" not in str(problems)
