"""Entry points wired by bootstrap: the scheduled sync (moto bus) and the stations resolver."""

from __future__ import annotations

import json

import pytest

from chalicelib.contracts.errors import ValidationError
from chalicelib.ocm.stations import haversine_km
from devstack.lambda_context import LocalLambdaContext

API_KEY = "test-key-123"


@pytest.fixture
def wired(aws, standin, monkeypatch):
    monkeypatch.setenv("OCM_API_URL", standin.url)
    monkeypatch.setenv("OCM_API_KEY", API_KEY)
    monkeypatch.setenv("OCM_PAGE_SIZE", "1000")
    from chalicelib.config import reset_settings_cache

    reset_settings_cache()
    return aws


def _event(field, **arguments):
    return {"arguments": arguments, "identity": {"resolverContext": {"userId": "u"}},
            "info": {"fieldName": field, "parentTypeName": "Query"}}


def scheduled_event() -> dict:
    """What the EventBridge schedule rule sends ``ocm_sync``."""
    return {"version": "0", "id": "e-1", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-02-21T14:31:00Z", "region": "eu-central-1",
            "resources": ["arn:aws:events:eu-central-1:123456789012:rule/jucr-test-ocm_sync"], "detail": {}}


def test_scheduled_sync_then_station_queries(wired, standin, fixture_records_master, capsys):
    """Through app.py's handler: its wrapper flushes the sync's metrics (the alarm's OcmSyncCompleted)."""
    import app
    from chalicelib.ocm.entry import resolve

    payload = app.ocm_sync(scheduled_event(), LocalLambdaContext("ocm_sync", timeout_seconds=300))
    assert payload["processed"] == 1586 and payload["inserted"] == 1586 and payload["complete"] is True
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(m.get("OcmSyncCompleted") == [1.0] or m.get("OcmSyncCompleted") == 1.0 for m in emf), emf

    centre = next(r for r in fixture_records_master if r["ID"] == 2388)["AddressInfo"]
    lat, lon, radius = centre["Latitude"], centre["Longitude"], 25.0
    result = resolve(_event("stationsNear", lat=lat, lon=lon, radiusKm=radius, first=100), None)

    expected = sorted(
        (haversine_km(lat, lon, r["AddressInfo"]["Latitude"], r["AddressInfo"]["Longitude"]), r["ID"])
        for r in fixture_records_master
    )
    expected_ids = [i for d, i in expected if d <= radius][:100]
    assert [s["ocmId"] for s in result] == expected_ids and len(result) > 3
    assert result[0]["ocmId"] == 2388 and result[0]["distanceKm"] == 0
    assert all(a["distanceKm"] <= b["distanceKm"] for a, b in zip(result, result[1:], strict=False))
    assert result[0]["attribution"]["provider"] == "afdc.energy.gov"

    one = resolve(_event("station", ocmId=16318), None)
    assert one["ocmId"] == 16318 and one["removed"] is False
    assert "CC BY-SA 4.0" in one["attribution"]["license"]
    assert resolve(_event("station", ocmId=999999999), None) is None


def test_removed_stations_are_not_near_but_still_readable(wired, standin):
    import app
    from chalicelib.ocm.entry import resolve

    app.ocm_sync(scheduled_event(), LocalLambdaContext("ocm_sync", timeout_seconds=300))
    standin.delist(2388)
    sweep = app.ocm_full_sweep(scheduled_event(), LocalLambdaContext("ocm_full_sweep", timeout_seconds=300))
    assert sweep["removed"] == 1 and sweep["mode"] == "full"

    near = resolve(_event("stationsNear", lat=34.050745, lon=-118.081014, radiusKm=1, first=5), None)
    assert 2388 not in [s["ocmId"] for s in near]
    assert resolve(_event("station", ocmId=2388), None)["removed"] is True


def test_resolver_rejects_bad_arguments_and_unknown_fields(wired):
    from chalicelib.ocm.entry import resolve

    with pytest.raises(ValidationError, match="radiusKm"):
        resolve(_event("stationsNear", lat=1.0, lon=1.0, radiusKm=-1.0), None)
    with pytest.raises(ValidationError, match="fieldName|stations resolver"):
        resolve(_event("me"), None)


def test_scheduled_sync_stops_before_the_lambda_runs_out(wired, standin, capsys):
    import app

    payload = app.ocm_sync(scheduled_event(), LocalLambdaContext("ocm_sync", timeout_seconds=5))
    assert payload["complete"] is False and payload["processed"] == 0
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any("OcmRecordsFailed" in m for m in emf), emf  # the run's metrics went out ...
    assert not any("OcmSyncCompleted" in m for m in emf)  # ... but an unfinished run does not feed the alarm
    assert standin.request_count == 0
