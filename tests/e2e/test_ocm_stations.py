"""Stations through the local stack's /graphql after its start-up sync, and the ocm-sync CLI."""

from __future__ import annotations

import json
import uuid

import pytest

NEAR = """query N($lat: Float!, $lon: Float!, $r: Float!, $first: Int) {
  stationsNear(lat: $lat, lon: $lon, radiusKm: $r, first: $first) {
    ocmId title distanceKm position { lat lon } address { line1 town postcode countryCode }
    operator status removed connections { type powerKw quantity } attribution { provider license }
  }
}"""
ONE = "query S($id: Int!) { station(ocmId: $id) { ocmId title removed attribution { provider license } } }"
REGISTER = """mutation R($input: RegisterInput!) { register(input: $input) { accessToken } }"""


@pytest.fixture(scope="module")
def token(local_stack) -> str:
    payload = {"email": f"ocm-{uuid.uuid4().hex[:10]}@example.com", "name": "Station Finder",
               "password": "correct horse battery staple", "vehicle": {"brand": "VW", "model": "ID.3",
                                                                        "batteryCapacity": 58}}
    status, body = local_stack.graphql(REGISTER, {"input": payload})
    assert status == 200 and "errors" not in body, body
    return body["data"]["register"]["accessToken"]


def _near(stack, token, **variables):
    return stack.graphql(NEAR, variables, token=token)


def test_cli_sync_then_full_sweep_print_the_payload_last(local_stack):
    # The stack syncs once at start-up; this incremental run (concurrent with it or after it) must
    # leave the mirror complete either way, and the full sweep after it must find nothing to do.
    first = local_stack.cli("ocm-sync", timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    payload = json.loads(first.stdout.strip().splitlines()[-1])
    assert list(payload)[:2] == ["eventType", "source"] and payload["eventType"] == "OCM_SYNC_COMPLETED"
    assert payload["source"] == "ocm-sync-worker" and payload["mode"] == "incremental" and payload["complete"]
    assert payload["failed"] == 0

    sweep = local_stack.cli("ocm-sync", "--full", timeout=300)
    assert sweep.returncode == 0, sweep.stderr[-2000:]
    payload = json.loads(sweep.stdout.strip().splitlines()[-1])
    assert payload["mode"] == "full" and payload["complete"] is True
    assert (payload["processed"], payload["inserted"], payload["updated"], payload["removed"]) == (1586, 0, 0, 0)
    assert "[ocm-sync] page 1" in sweep.stderr


def test_stations_near_after_the_start_up_sync(local_stack, token):
    variables = {"lat": 34.050745, "lon": -118.081014, "r": 10.0, "first": 5}

    def synced():
        status, body = _near(local_stack, token, **variables)
        return body if status == 200 and body.get("data", {}).get("stationsNear") else None

    body = local_stack.wait_for(synced, timeout=90)
    stations = body["data"]["stationsNear"]
    assert stations[0]["ocmId"] == 2388 and stations[0]["distanceKm"] == 0
    assert stations[0]["title"] == "Southern California Edison - Rosemead Office Building 1"
    assert stations[0]["attribution"]["provider"] == "afdc.energy.gov"
    assert [s["distanceKm"] for s in stations] == sorted(s["distanceKm"] for s in stations)
    assert len(stations) <= 5 and all(s["removed"] is False for s in stations)

    status, one = local_stack.graphql(ONE, {"id": 16318}, token=token)
    assert status == 200 and one["data"]["station"]["ocmId"] == 16318
    assert "CC BY-SA 4.0" in one["data"]["station"]["attribution"]["license"]


def test_bad_arguments_are_validation_errors(local_stack, token):
    status, body = _near(local_stack, token, lat=95.0, lon=0.0, r=5.0)
    assert body["errors"][0]["errorType"] == "ValidationError" and "lat" in body["errors"][0]["message"]
    status, body = _near(local_stack, token, lat=1.0, lon=0.0, r=500.0)
    assert body["errors"][0]["errorType"] == "ValidationError" and "radiusKm" in body["errors"][0]["message"]


def test_stations_need_a_token(local_stack):
    status, body = _near(local_stack, None, lat=34.05, lon=-118.08, r=5.0)
    assert status in (200, 401) and "errors" in body and not (body.get("data") or {}).get("stationsNear")
