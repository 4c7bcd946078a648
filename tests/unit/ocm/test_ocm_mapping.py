"""Record validation, mapping and the content hash (no store, no network)."""

from __future__ import annotations

import copy

import pytest

from chalicelib.ocm.mapping import RecordInvalid, content_hash, map_record
from devstack.ocm_standin import load_records


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return load_records()


def test_every_fixture_record_maps(records):
    mapped = [map_record(r) for r in records]
    assert len({m.ocm_id for m in mapped}) == 1586
    countries = {m.body["address"]["countryCode"] for m in mapped}
    assert countries == {"US", "DE", "NL"}
    assert all(m.body["attribution"]["provider"] for m in mapped)


def test_mapping_of_a_known_record(records):
    body = map_record(next(r for r in records if r["ID"] == 2388)).body
    assert body["position"] == {"type": "Point", "coordinates": [-118.081014, 34.050745]}
    assert (body["lat"], body["lon"]) == (34.050745, -118.081014)
    assert body["operator"] == {"id": 59, "title": "GreenLots"}
    assert body["status"] == {"id": 0, "title": "Unknown"}
    assert body["connections"][1]["type"] == "Type 1 (J1772)" and body["connections"][1]["powerKw"] == 3
    assert body["dataProvider"]["title"] == "afdc.energy.gov"
    assert body["address"]["town"] == "Rosemead" and body["address"]["countryCode"] == "US"


def test_untrimmed_and_empty_strings_are_cleaned(records):
    record = copy.deepcopy(records[0])
    record["AddressInfo"].update(Postcode="40210 ", AddressLine2="", Town="  ")
    address = map_record(record).body["address"]
    assert (address["postcode"], address["line2"], address["town"]) == ("40210", None, None)


def test_verbose_inline_objects_win_over_the_reference_table(records):
    record = copy.deepcopy(records[0])
    record["OperatorInfo"] = {"ID": 59, "Title": "GreenLots Inc."}
    record["DataProvider"] = {"ID": 2, "Title": "AFDC", "License": "Public domain"}
    body = map_record(record).body
    assert body["operator"]["title"] == "GreenLots Inc."
    assert body["attribution"] == {"provider": "AFDC", "license": "Public domain", "note": None}


def test_metadata_attribution_is_kept(records):
    record = copy.deepcopy(records[0])
    record["MetadataValues"] = [{"MetadataFieldID": 4, "ItemValue": "Data from NOBIL"}]
    assert map_record(record).body["attribution"]["note"] == "Data from NOBIL"


def test_hash_ignores_fields_that_change_with_time_alone(records):
    record = copy.deepcopy(records[0])
    base = content_hash(record)
    record["IsRecentlyVerified"] = True
    record["DateLastVerified"] = "2031-01-01T00:00:00Z"
    assert content_hash(record) == base
    record["AddressInfo"]["Title"] = "Another title"
    assert content_hash(record) != base


def test_hash_is_independent_of_key_order(records):
    record = records[0]
    reordered = dict(reversed(list(record.items())))
    assert content_hash(reordered) == content_hash(record)


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"ID": 5}, "AddressInfo"),
        ({"ID": "5", "AddressInfo": {"Latitude": 1, "Longitude": 1}}, "ID"),
        ({"ID": 5, "AddressInfo": {"Latitude": 91, "Longitude": 1}}, "AddressInfo.Latitude"),
        ({"ID": 5, "AddressInfo": {"Latitude": 1, "Longitude": -181}}, "AddressInfo.Longitude"),
        ({"ID": 5, "AddressInfo": {"Latitude": 0, "Longitude": 0}}, "AddressInfo.Latitude"),
        ({"ID": 5, "AddressInfo": {"Latitude": 1, "Longitude": 1}, "Connections": [{"PowerKW": "x"}]},
         "Connections.0.PowerKW"),
    ],
)
def test_invalid_records_name_the_field(record, field):
    with pytest.raises(RecordInvalid) as info:
        map_record(record)
    assert field in info.value.problems
    assert info.value.ocm_id == (5 if record["ID"] == 5 else None)


def test_non_object_record_is_invalid():
    with pytest.raises(RecordInvalid):
        map_record(["not", "a", "record"])


@pytest.mark.parametrize("option", ["NOBIL", ["NOBIL"], 4, None])
def test_metadata_option_that_is_not_an_object_is_ignored_not_fatal(records, option):
    record = copy.deepcopy(records[0])
    record["MetadataValues"] = [{"MetadataFieldID": 4, "ItemValue": None, "MetadataFieldOption": option}]
    assert map_record(record).body["attribution"]["note"] is None


def test_metadata_option_title_is_the_fallback_note(records):
    record = copy.deepcopy(records[0])
    record["MetadataValues"] = [{"MetadataFieldID": 4, "MetadataFieldOption": {"Title": " Data from NOBIL "}}]
    assert map_record(record).body["attribution"]["note"] == "Data from NOBIL"


def test_an_unexpected_shape_past_the_schema_is_a_record_error_not_a_crash(records, monkeypatch):
    from chalicelib.ocm import mapping

    def broken(poi):
        raise AttributeError("'str' object has no attribute 'get'")

    monkeypatch.setattr(mapping, "_provider", broken)
    with pytest.raises(RecordInvalid) as err:
        map_record(copy.deepcopy(records[0]))
    assert err.value.ocm_id == records[0]["ID"] and "_schema" in err.value.problems
