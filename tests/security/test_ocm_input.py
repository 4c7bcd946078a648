"""Poison OCM records: keys MongoDB cannot store must not stall the sync.

A record is attacker-controlled input (anyone can edit OCM). One record holding a
``$``-prefixed key or a dotted key used to fail the whole page write, so the cursor
never moved and every later run fetched the same page again.
"""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from chalicelib.events.publisher import RecordingPublisher
from chalicelib.ocm.client import ClientConfig, OcmClient
from chalicelib.ocm.mapping import map_record, storable_keys
from chalicelib.ocm.repository import INDEXES, MirrorRepository
from chalicelib.ocm.sync import SyncDeps, SyncOptions, run_sync
from chalicelib.store import ensure_indexes
from devstack.ocm_standin import load_records, start_standin

API_KEY = "security-test-key"
PAGE = 50


@pytest.fixture(scope="module")
def sample() -> list[dict]:
    return load_records()[:120]


def _poison(records: list[dict]) -> tuple[list[dict], int, int]:
    """The sample with a ``$where`` key on one record and an ``a.b`` key nested in another (same page)."""
    records = copy.deepcopy(records)
    ordered = sorted(records, key=lambda r: r["ID"])
    dollar, dotted = ordered[3], ordered[7]
    dollar["$where"] = "function() { return true; }"
    dotted["AddressInfo"]["Extra"] = {"a.b": 1, "$gt": {"c.d": [1, {"$ne": None}]}, "nul\x00key": 2}
    return records, dollar["ID"], dotted["ID"]


@pytest.fixture
def feed(sample):
    records, dollar_id, dotted_id = _poison(sample)
    server, thread = start_standin("127.0.0.1", 0, api_key=API_KEY, records=records)
    client = OcmClient(ClientConfig(base_url=server.url, api_key=API_KEY, timeout_seconds=10, retries=1,
                                    backoff_factor=0.01, backoff_jitter=0.01))
    yield server, client, records, (dollar_id, dotted_id)
    client.close()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _deps(client, db) -> SyncDeps:
    ensure_indexes(db, INDEXES)
    now = dt.datetime.now(dt.UTC)
    return SyncDeps(source=client, repo=MirrorRepository(db), publisher=RecordingPublisher(), clock=lambda: now)


def test_poison_keys_do_not_stall_the_sync(feed, db):
    server, client, records, (dollar_id, dotted_id) = feed
    deps = _deps(client, db)
    payload = run_sync(deps, SyncOptions(page_size=PAGE, min_margin_seconds=0.0))

    assert payload["complete"] is True
    assert payload["processed"] == len(records)
    assert payload["failed"] == 0  # escaped, not dropped: every record is stored
    assert payload["inserted"] == len(records)
    stored = deps.repo.stations.find_one({"ocm_id": dollar_id})
    assert stored["raw"]["%24where"] == "function() { return true; }"
    assert "$where" not in stored["raw"]
    nested = deps.repo.stations.find_one({"ocm_id": dotted_id})["raw"]["AddressInfo"]["Extra"]
    assert nested == {"a%2Eb": 1, "%24gt": {"c%2Ed": [1, {"%24ne": None}]}, "nul%00key": 2}
    state = deps.repo.load_state("incremental", client.identity)
    assert state.get("run") is None and state.get("lastSuccessAt") is not None


def test_next_run_does_not_refetch_the_poison_page(feed, db):
    server, client, records, _ = feed
    deps = _deps(client, db)
    run_sync(deps, SyncOptions(page_size=PAGE, min_margin_seconds=0.0))
    requests_after_first = len(server.requests)
    second = run_sync(deps, SyncOptions(page_size=PAGE, min_margin_seconds=0.0))

    assert second["complete"] is True
    assert second["processed"] == 0  # an incremental run: nothing changed since, no page fetched again
    assert len(server.requests) - requests_after_first == 1


def test_storable_keys_round_trip_and_leave_clean_records_alone(sample):
    clean = sample[0]
    assert storable_keys(clean) == clean
    assert map_record(clean).body["raw"] == clean
    odd = {"$x": {"y.z": ["%", {"%24": 1}]}, "a\x00b": 2, "mid$dle": 3}
    escaped = storable_keys(odd)
    assert escaped == {"%24x": {"y%2Ez": ["%", {"%2524": 1}]}, "a%00b": 2, "mid$dle": 3}


class RefusingCollection:
    """The stations collection, refusing some documents the way MongoDB does (unordered: the rest land).

    The embedded store accepts keys a real server refuses, so the refusal is played here:
    any write of a document holding a ``$``-prefixed key (code 52, as MongoDB answers a
    ``$set`` of one) or of an id in ``refuse_ids`` (code 10334, too large).
    """

    def __init__(self, real, refuse_ids=()):
        self._real, self._refuse_ids = real, set(refuse_ids)

    def __getattr__(self, name):
        return getattr(self._real, name)

    def _refused(self, operation) -> int | None:
        doc = getattr(operation, "_doc", None)
        ocm_id = doc.get("ocm_id") if "ocm_id" in doc else doc.get("$set", {}).get("ocm_id")
        if ocm_id in self._refuse_ids:
            return 10334
        return 52 if _has_dollar_key(doc.get("$set", doc)) else None

    def bulk_write(self, operations, ordered=True):
        from pymongo.errors import BulkWriteError

        codes = [self._refused(op) for op in operations]
        kept = [op for op, code in zip(operations, codes, strict=True) if code is None]
        details = self._real.bulk_write(kept, ordered=False).bulk_api_result if kept else {}
        errors = [{"index": i, "code": code, "errmsg": "refused"} for i, code in enumerate(codes) if code]
        if errors:
            raise BulkWriteError({"writeErrors": errors, "writeConcernErrors": [], "nInserted": len(kept),
                                  "nMatched": details.get("nMatched", 0), "nModified": details.get("nModified", 0),
                                  "nUpserted": 0, "nRemoved": 0, "upserted": []})
        return _Result(details)


class _Result:
    def __init__(self, details):
        self.bulk_api_result = details


def _has_dollar_key(value) -> bool:
    if isinstance(value, dict):
        return any(str(k).startswith("$") or _has_dollar_key(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_dollar_key(v) for v in value)
    return False


def test_no_dollar_key_reaches_a_server_that_refuses_them(feed, db):
    server, client, records, _ = feed
    deps = _deps(client, db)
    deps.repo.stations = RefusingCollection(deps.repo.stations)
    payload = run_sync(deps, SyncOptions(page_size=PAGE, min_margin_seconds=0.0))
    assert payload["complete"] is True
    assert (payload["inserted"], payload["failed"]) == (len(records), 0)


def test_a_record_the_store_refuses_is_counted_failed_and_the_cursor_moves(feed, db):
    server, client, records, _ = feed
    ids = sorted(r["ID"] for r in records)
    too_large = ids[10]  # on the first page
    deps = _deps(client, db)
    deps.repo.stations = RefusingCollection(deps.repo.stations, refuse_ids={too_large})
    payload = run_sync(deps, SyncOptions(page_size=PAGE, min_margin_seconds=0.0))

    assert payload["complete"] is True
    assert payload["failed"] == 1
    assert payload["inserted"] == len(records) - 1
    assert deps.repo.stations.find_one({"ocm_id": too_large}) is None
    assert deps.repo.stations.count_documents({}) == len(records) - 1
    first_page = [r for r in server.requests if r["params"].get("greaterthanid") == "0"]
    assert len(first_page) == 1  # the refused record's page was fetched once, then the cursor moved on
    state = deps.repo.load_state("incremental", client.identity)
    assert state.get("run") is None and state.get("lastSuccessAt") is not None
