"""The unit tests' in-memory repositories behave as the real ones on the store.

Each test below runs twice, once on the twin a unit test uses and once on the
repository production uses (on the embedded MongoDB, and on a real one when marked
``mongodb`` and ``MONGODB_URI`` is set). One set of assertions for both: when a twin
drifts (a filter it skips, a copy it does not make, a write it invents), its run fails
here, instead of a unit test passing on behaviour production does not have.

The twins: ``InMemoryAuthRepository`` (``tests/unit/auth/conftest.py``, beside the auth
fixtures it serves) and, in ``tests/fakes.py``, the DLQ audit and the OCM stations read.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from chalicelib.auth.repository import INDEXES as AUTH_INDEXES
from chalicelib.auth.repository import AuthRepository, DuplicateEmail
from chalicelib.auth.throttle import Gate
from chalicelib.dlq.repository import DeadLetterRepository
from chalicelib.ocm.repository import INDEXES as OCM_INDEXES
from chalicelib.ocm.repository import STATIONS, MirrorRepository
from chalicelib.store import ensure_indexes
from tests.fakes import InMemoryDeadLetters, InMemoryStations
from tests.unit.auth.conftest import InMemoryAuthRepository

pytestmark = pytest.mark.mongodb

T0 = dt.datetime(2026, 2, 21, 14, 0, tzinfo=dt.UTC)  # whole seconds: BSON keeps milliseconds only
HOUR = dt.timedelta(hours=1)


def _in_memory(request, db_backend: str) -> bool:
    """True for the twin's run; a twin has no backend, so its second (real-server) run is skipped."""
    if request.param == "in-memory" and db_backend != "embedded":
        pytest.skip("the in-memory twin ran once already; only the repository runs on a real server")
    return request.param == "in-memory"


def _twin_or_real(request, db_backend: str, fake: Any, real: Any, indexes: list | None = None) -> Any:
    if _in_memory(request, db_backend):
        return fake()
    db = request.getfixturevalue("db")
    if indexes:
        ensure_indexes(db, indexes)  # the unique indexes are part of the contract
    return real(db)


@pytest.fixture(params=["in-memory", "repository"])
def auth_repo(request, db_backend):
    return _twin_or_real(request, db_backend, InMemoryAuthRepository, AuthRepository, AUTH_INDEXES)


@pytest.fixture(params=["in-memory", "repository"])
def audit(request, db_backend):
    return _twin_or_real(request, db_backend, InMemoryDeadLetters, DeadLetterRepository)


def _user(user_id: str, email: str) -> dict[str, Any]:
    return {"_id": user_id, "email": email, "name": "Dana Driver", "passwordHash": "x", "tokenVersion": 0,
            "createdAt": T0, "registrationPublished": False}


# --- auth ------------------------------------------------------------------------------------------

def test_auth_users_one_per_email_and_reads_are_copies(auth_repo):
    auth_repo.insert_user(_user("u-1", "dana@example.com"))
    with pytest.raises(DuplicateEmail):
        auth_repo.insert_user(_user("u-2", "dana@example.com"))
    found = auth_repo.find_user("u-1")
    assert found["email"] == "dana@example.com" and auth_repo.find_user("u-2") is None
    found["email"] = "changed@example.com"
    assert auth_repo.find_user_by_email("dana@example.com")["_id"] == "u-1"
    assert auth_repo.find_user_by_email("nobody@example.com") is None


def test_auth_token_version_and_registration_flag(auth_repo):
    auth_repo.insert_user(_user("u-1", "dana@example.com"))
    assert [auth_repo.bump_token_version("u-1") for _ in range(2)] == [1, 2]
    assert auth_repo.bump_token_version("missing") is None
    auth_repo.mark_registration_published("u-1")
    assert auth_repo.find_user("u-1")["registrationPublished"] is True


def test_auth_attempts_start_once_per_live_document(auth_repo):
    assert auth_repo.start_attempts("k", T0, {"expiresAt": T0 + HOUR}) is True
    assert auth_repo.start_attempts("k", T0, {"expiresAt": T0 + 2 * HOUR}) is False
    assert auth_repo.find_attempts("k")["failures"] == 1
    later = T0 + 2 * HOUR  # the first document's expiresAt has passed: a new one replaces it
    assert auth_repo.start_attempts("k", later, {"expiresAt": later + HOUR}) is True
    assert auth_repo.find_attempts("k")["failures"] == 1
    assert auth_repo.find_attempts("k")["expiresAt"] == later + HOUR


def test_auth_failures_pass_only_through_a_gate_and_stretch_only_later(auth_repo):
    auth_repo.start_attempts("k", T0, {"expiresAt": T0 + HOUR, "lastFailureAt": T0})
    assert auth_repo.add_failure("k", T0, [Gate(low=2)], {}) is None  # 1 failure: below the gate
    assert auth_repo.add_failure("k", T0, [Gate(low=0, last_by=T0 - dt.timedelta(seconds=1))], {}) is None
    assert auth_repo.add_failure("k", T0, [Gate(low=2), Gate(low=0, high=1, last_by=T0)],
                                 {"expiresAt": T0 + 2 * HOUR}) == 2
    assert auth_repo.add_failure("k", T0, [Gate(low=0)], {"expiresAt": T0 + HOUR / 2}) == 3
    assert auth_repo.find_attempts("k")["expiresAt"] == T0 + 2 * HOUR  # $max: never earlier
    assert auth_repo.add_failure("k", T0 + 3 * HOUR, [Gate(low=0)], {}) is None  # the document has ended
    assert auth_repo.add_failure("missing", T0, [Gate(low=0)], {}) is None


def test_auth_release_and_clear(auth_repo):
    auth_repo.start_attempts("k", T0, {"expiresAt": T0 + HOUR})
    auth_repo.add_failure("k", T0, [Gate(low=0)], {})
    auth_repo.release_failure("k", T0)
    assert auth_repo.find_attempts("k")["failures"] == 1
    auth_repo.release_failure("k", T0 + 2 * HOUR)  # ended: nothing is given back
    assert auth_repo.find_attempts("k")["failures"] == 1
    auth_repo.clear_attempts("k")
    assert auth_repo.find_attempts("k") is None


def test_auth_remember_keeps_a_marker_and_moves_its_end(auth_repo):
    auth_repo.remember("trusted", T0 + HOUR)
    auth_repo.remember("trusted", T0 + 2 * HOUR)
    assert auth_repo.find_attempts("trusted") == {"_id": "trusted", "remembered": True, "expiresAt": T0 + 2 * HOUR}


def test_auth_refresh_token_is_spent_once_and_never_when_expired(auth_repo):
    auth_repo.insert_refresh("h-1", {"userId": "u-1", "familyId": "f-1", "expiresAt": T0 + HOUR})
    auth_repo.insert_refresh("h-2", {"userId": "u-1", "familyId": "f-1", "expiresAt": T0})
    spent = auth_repo.spend_refresh("h-1", T0)
    assert spent["userId"] == "u-1" and spent["usedAt"] == T0
    assert auth_repo.spend_refresh("h-1", T0) is None
    assert auth_repo.spend_refresh("h-2", T0) is None  # expiresAt == now: expired
    assert auth_repo.spend_refresh("unknown", T0) is None
    assert auth_repo.find_refresh("h-1")["usedAt"] == T0 and auth_repo.find_refresh("h-2")["usedAt"] is None


def test_auth_family_renews_until_revoked(auth_repo):
    auth_repo.create_family("f-1", "u-1", T0, T0 + HOUR)
    assert auth_repo.renew_family("f-1", T0 + 2 * HOUR) is True
    assert auth_repo.renew_family("f-1", T0 + HOUR / 2) is True  # never moves expiry earlier
    auth_repo.revoke_family("f-1", T0)
    auth_repo.revoke_family("f-1", T0 + HOUR)  # the first revocation stands
    assert auth_repo.renew_family("f-1", T0 + 3 * HOUR) is False
    assert auth_repo.renew_family("unknown", T0 + HOUR) is False


# --- the DLQ audit ------------------------------------------------------------------------------------

def _decision(key: str, queue: str = "billing-dlq", minutes: int = 0, **fields: Any) -> dict[str, Any]:
    return {"_id": key, "kind": "decision", "queue": queue, "decidedAt": T0 + dt.timedelta(minutes=minutes),
            "parked": True, **fields}


def test_audit_claim_is_once_per_key_and_complete_marks_it_done(audit):
    assert audit.claim(_decision("d-1", action="redriven")) is None
    again = audit.claim(_decision("d-1", action="something else"))
    assert again["status"] == "pending" and again["action"] == "redriven"
    audit.complete("d-1", {"result": {"outcome": "sent"}})
    stored = audit.get("d-1")
    assert stored["status"] == "done" and stored["result"] == {"outcome": "sent"} and stored["action"] == "redriven"
    assert audit.get("unknown") is None


def test_audit_parked_lists_unreplayed_decisions_of_the_queue_oldest_first(audit):
    for record in (_decision("late", minutes=5), _decision("early", minutes=1), _decision("other", "wallets-dlq"),
                   _decision("not-parked", parked=False), {**_decision("replay"), "kind": "replay"},
                   _decision("middle", minutes=3)):
        audit.claim(record)
    assert [r["_id"] for r in audit.parked("billing-dlq", limit=10)] == ["early", "middle", "late"]
    assert [r["_id"] for r in audit.parked("billing-dlq", limit=2)] == ["early", "middle"]
    audit.mark_replayed("early", T0 + HOUR, "replay:early")
    assert [r["_id"] for r in audit.parked("billing-dlq", limit=10)] == ["middle", "late"]
    assert audit.get("early")["replayKey"] == "replay:early"


def test_audit_mark_replayed_never_invents_a_record(audit):
    audit.mark_replayed("unknown", T0, "replay:unknown")
    assert audit.get("unknown") is None


# --- the OCM stations read --------------------------------------------------------------------------

def _station(ocm_id: int, lat: float, lon: float, removed: bool = False) -> dict[str, Any]:
    return {"_id": f"s-{ocm_id}", "ocm_id": ocm_id, "lat": lat, "lon": lon, "title": f"s{ocm_id}",
            "removed": removed, "raw": {"ID": ocm_id}, "hash": f"h{ocm_id}"}


STATIONS_SEEN = [_station(1, 52.50, 13.40), _station(2, 52.60, 13.40), _station(3, 52.50, 13.90),
                 _station(4, 52.51, 13.41, removed=True), _station(5, -17.7, 179.95), _station(6, -17.7, -179.95),
                 _station(7, -17.7, 170.0), _station(8, 52.52, 13.39)]


@pytest.fixture(params=["in-memory", "repository"])
def stations(request, db_backend):
    if _in_memory(request, db_backend):
        return InMemoryStations(STATIONS_SEEN)
    db = request.getfixturevalue("db")
    ensure_indexes(db, OCM_INDEXES)
    db[STATIONS].insert_many([dict(s) for s in STATIONS_SEEN])
    return MirrorRepository(db)


def test_stations_in_box_keeps_live_stations_inside_both_bounds(stations):
    found = stations.in_box(52.45, 52.55, [(13.30, 13.50)], limit=10)
    assert sorted(s["ocm_id"] for s in found) == [1, 8]  # 2: north of it, 3: east, 4: removed
    assert all("raw" not in s and "hash" not in s for s in found)


def test_stations_in_box_reads_both_sides_of_the_antimeridian(stations):
    found = stations.in_box(-18.0, -17.0, [(179.0, 180.0), (-180.0, -179.0)], limit=10)
    assert sorted(s["ocm_id"] for s in found) == [5, 6]


def test_stations_in_box_stops_at_the_limit(stations):
    found = stations.in_box(-90.0, 90.0, [(-180.0, 180.0)], limit=3)
    assert len(found) == 3 and {s["ocm_id"] for s in found} <= {1, 2, 3, 5, 6, 7, 8}
