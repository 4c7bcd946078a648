import copy
import datetime as dt
import json
from decimal import Decimal

import pytest

from chalicelib.contracts import jsonschema
from chalicelib.contracts.errors import ValidationError
from chalicelib.contracts.events import SESSION_ENDED, build_detail, parse_event

SEED_SESSION = json.loads(
    '{"eventType":"SESSION_ENDED","sessionId":"6fe27f6e-ff2d-4dda-9f86-3de70e1a4bbf",'
    '"userId":"0b1732fa-631a-4952-b6d6-2d586ed9dbf8","stationId":"48f8fb15-814d-4e9d-97e1-d2caea2a162f",'
    '"energyKwh":22.4,"durationMinutes":58,"endedAt":"2026-02-21T14:31:00Z"}'
)
SEED_SYNC = json.loads(
    '{"eventType":"OCM_SYNC_COMPLETED","source":"ocm-sync-worker","startedAt":"2026-02-21T06:00:00Z",'
    '"finishedAt":"2026-02-21T06:02:18Z","processed":25000,"updated":418,"failed":0}'
)


def test_seed_session_ended_validates_exactly_as_given():
    event = parse_event("SESSION_ENDED", SEED_SESSION)
    assert event.schema_version == 1
    assert event.event_id is None
    assert event.payload["energyKwh"] == Decimal("22.4")  # not 22.39999...
    assert event.payload["durationMinutes"] == 58
    assert event.payload["endedAt"] == dt.datetime(2026, 2, 21, 14, 31, tzinfo=dt.timezone.utc)


def test_seed_ocm_sync_completed_validates():
    event = parse_event(None, SEED_SYNC)
    assert event.payload["processed"] == 25000
    assert event.payload["source"] == "ocm-sync-worker"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"energyKwh": -1}, "energyKwh"),
        ({"energyKwh": "lots"}, "energyKwh"),
        ({"durationMinutes": 1.5}, "durationMinutes"),
        ({"durationMinutes": "58"}, "durationMinutes"),
        ({"endedAt": "yesterday"}, "endedAt"),
        ({"endedAt": "2026-02-21T14:31:00"}, "endedAt"),
        ({"userId": "not-a-uuid"}, "userId"),
        ({"sessionId": None}, "sessionId"),
        ({"schemaVersion": 2}, "schemaVersion"),
        ({"schemaVersion": "1"}, "schemaVersion"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(change, field):
    bad = dict(SEED_SESSION, **change)
    with pytest.raises(ValidationError) as err:
        parse_event("SESSION_ENDED", bad)
    assert field in err.value.message


def test_missing_field_is_named():
    bad = copy.deepcopy(SEED_SESSION)
    del bad["stationId"]
    with pytest.raises(ValidationError) as err:
        parse_event("SESSION_ENDED", bad)
    assert err.value.details == {"stationId": "Missing data for required field."}


def test_fields_added_within_a_version_are_tolerated_and_dropped():
    event = parse_event("SESSION_ENDED", dict(SEED_SESSION, chargerFirmware="1.2.3"))
    assert "chargerFirmware" not in event.payload


def test_not_an_object_and_unknown_types_are_clear_errors():
    with pytest.raises(ValidationError, match="must be a JSON object"):
        parse_event("SESSION_ENDED", ["x"])
    with pytest.raises(ValidationError, match="unknown event type"):
        parse_event("SESSION_STARTED", {})
    with pytest.raises(ValidationError, match="does not match"):
        parse_event("USER_REGISTERED", SEED_SESSION)


def test_build_detail_adds_the_envelope_and_round_trips():
    payload = parse_event("SESSION_ENDED", SEED_SESSION).payload
    when = dt.datetime(2026, 2, 21, 14, 32, tzinfo=dt.timezone.utc)
    detail = build_detail(SESSION_ENDED, payload, occurred_at=when, correlation_id="c-1", idempotency_key="k")
    assert detail["schemaVersion"] == 1
    assert detail["occurredAt"] == "2026-02-21T14:32:00Z"
    assert detail["energyKwh"] == "22.4"
    again = parse_event("SESSION_ENDED", json.loads(json.dumps(detail)))
    assert again.payload == payload
    assert again.correlation_id == "c-1"


def test_build_detail_refuses_an_invalid_outgoing_event():
    with pytest.raises(ValidationError):
        build_detail("USER_REGISTERED", {"userId": "x"}, occurred_at=dt.datetime.now(dt.timezone.utc))


def test_published_contract_docs_are_current():
    """docs/contracts/ must match the schemas; run `make contracts` after changing one."""
    expected = jsonschema.render_all()
    on_disk = {p.name: p.read_text() for p in jsonschema.DOCS_DIR.glob("*.json")}
    assert on_disk == expected
