"""Nearby-search geometry and argument validation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.contracts.errors import ValidationError
from chalicelib.ocm.stations import bounding_box, haversine_km, stations_near, to_station
from tests.fakes import InMemoryStations


def test_haversine_known_distance():
    # Berlin Hbf -> Munich Hbf: about 504 km great-circle.
    assert haversine_km(52.5251, 13.3694, 48.1402, 11.5586) == pytest.approx(504.3, abs=1.0)
    assert haversine_km(10, 20, 10, 20) == 0


def test_box_crossing_the_antimeridian_is_split():
    south, north, ranges = bounding_box(-17.7, 179.9, 50)
    assert len(ranges) == 2 and ranges[0][1] == 180.0 and ranges[1][0] == -180.0
    assert south < -17.7 < north


def test_box_near_a_pole_covers_every_longitude():
    assert bounding_box(89.95, 10, 20)[2] == [(-180.0, 180.0)]


@settings(max_examples=300, deadline=None)
@given(
    lat=st.floats(-85, 85), lon=st.floats(-180, 180), radius=st.floats(0.1, 100),
    bearing_lat=st.floats(-1, 1), bearing_lon=st.floats(-1, 1),
)
def test_every_point_within_the_radius_is_inside_the_box(lat, lon, radius, bearing_lat, bearing_lon):
    south, north, ranges = bounding_box(lat, lon, radius)
    # a point somewhere near the centre; if it is within the radius it must be in the box
    plat = max(-90.0, min(90.0, lat + bearing_lat * radius / 111))
    plon = lon + bearing_lon * radius / 40
    plon = (plon + 180) % 360 - 180
    if haversine_km(lat, lon, plat, plon) <= radius:
        assert south <= plat <= north
        assert any(lo <= plon <= hi for lo, hi in ranges)


def _doc(ocm_id, lat, lon):
    return {"ocm_id": ocm_id, "lat": lat, "lon": lon, "title": f"s{ocm_id}", "removed": False,
            "attribution": {"provider": "Open Charge Map Contributors", "license": "CC BY-SA 4.0"}}


def test_nearest_first_and_corners_of_the_box_excluded():
    repo = InMemoryStations([_doc(1, 52.52, 13.40), _doc(2, 52.50, 13.40), _doc(3, 52.60, 13.55),
                             _doc(4, 52.51, 13.40)])
    result = stations_near(repo, {"lat": 52.50, "lon": 13.40, "radiusKm": 10, "first": 3})
    assert [s["ocmId"] for s in result] == [2, 4, 1]
    assert result[0]["distanceKm"] == 0 and result[1]["distanceKm"] == pytest.approx(1.112, abs=0.01)
    assert result[0]["attribution"] == {"provider": "Open Charge Map Contributors", "license": "CC BY-SA 4.0"}


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ({"lat": 91, "lon": 0, "radiusKm": 1}, "lat"),
        ({"lat": -90.5, "lon": 0, "radiusKm": 1}, "lat"),
        ({"lat": 0, "lon": 181, "radiusKm": 1}, "lon"),
        ({"lat": 0, "lon": 0, "radiusKm": 0}, "radiusKm"),
        ({"lat": 0, "lon": 0, "radiusKm": 100.5}, "radiusKm"),
        ({"lat": 0, "lon": 0, "radiusKm": 5, "first": 0}, "first"),
        ({"lat": 0, "lon": 0, "radiusKm": 5, "first": 101}, "first"),
        ({"lon": 0, "radiusKm": 5}, "lat"),
    ],
)
def test_invalid_arguments_name_the_argument(args, name):
    with pytest.raises(ValidationError) as info:
        stations_near(InMemoryStations([]), args)
    assert name in info.value.details and name in info.value.message


def test_station_shape_matches_the_schema():
    doc = {**_doc(7, 1.0, 2.0), "address": {"line1": "a", "town": "b", "postcode": "c", "countryCode": "DE",
                                            "state": "x"},
           "operator": {"id": 1, "title": "Op"}, "status": {"id": 50, "title": "Operational"},
           "connections": [{"type": "CCS", "powerKw": 150.0, "quantity": 2, "typeId": 33}]}
    station = to_station(doc)
    assert set(station) == {"ocmId", "title", "position", "distanceKm", "address", "operator", "status",
                            "removed", "connections", "attribution"}
    assert station["address"] == {"line1": "a", "town": "b", "postcode": "c", "countryCode": "DE"}
    assert station["connections"] == [{"type": "CCS", "powerKw": 150.0, "quantity": 2}]
    assert (station["operator"], station["status"], station["distanceKm"]) == ("Op", "Operational", None)


def _dense_area():
    # 30 far stations stored first (about 20-40 km north), then the 3 nearest ones.
    far = [_doc(100 + i, 52.70 + i * 0.005, 13.40) for i in range(30)]
    return far + [_doc(3, 52.503, 13.40), _doc(1, 52.501, 13.40), _doc(2, 52.502, 13.40)]


def test_a_cut_candidate_list_never_hides_the_nearest(monkeypatch):
    from chalicelib.ocm import stations

    monkeypatch.setattr(stations, "MAX_BOX_CANDIDATES", 10)
    repo = InMemoryStations(_dense_area())
    result = stations_near(repo, {"lat": 52.50, "lon": 13.40, "radiusKm": 50, "first": 3})
    assert [s["ocmId"] for s in result] == [1, 2, 3]
    assert repo.limits[0] == 11  # asks for one more than the cap, to know whether it was cut


def test_too_dense_for_an_exact_answer_is_a_clear_error(monkeypatch):
    from chalicelib.ocm import stations

    monkeypatch.setattr(stations, "MAX_BOX_CANDIDATES", 10)
    with pytest.raises(ValidationError) as err:
        stations_near(InMemoryStations(_dense_area()), {"lat": 52.50, "lon": 13.40, "radiusKm": 50, "first": 20})
    assert "radiusKm" in err.value.details


def test_an_uncut_box_answers_from_the_requested_radius():
    repo = InMemoryStations(_dense_area())
    result = stations_near(repo, {"lat": 52.50, "lon": 13.40, "radiusKm": 50, "first": 20})
    assert [s["ocmId"] for s in result][:3] == [1, 2, 3] and len(result) == 20
    assert len(repo.limits) == 1
