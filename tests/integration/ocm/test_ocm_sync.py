"""The sync worker against the stand-in API and the embedded store."""

from __future__ import annotations

import uuid

import pytest

from chalicelib.contracts.events import OCM_SYNC_COMPLETED
from chalicelib.ocm.sync import SyncDeps, run_sync

PAGE = 500


def _valid_ids(records):
    return sorted(r["ID"] for r in records)


def test_first_sync_mirrors_every_fixture_record(deps, repo, publisher, fixture_records_master, opts):
    payload = run_sync(deps, opts())

    assert payload["processed"] == len(fixture_records_master) == 1586
    assert (payload["inserted"], payload["updated"], payload["failed"], payload["removed"]) == (1586, 0, 0, 0)
    assert payload["complete"] is True and payload["source"] == "ocm-sync-worker"
    assert list(payload)[:7] == ["eventType", "source", "startedAt", "finishedAt", "processed", "updated", "failed"]
    assert payload["eventType"] == OCM_SYNC_COMPLETED
    docs = {d["ocm_id"]: d for d in repo.stations.find({})}
    assert sorted(docs) == _valid_ids(fixture_records_master)
    for record in fixture_records_master:
        doc = docs[record["ID"]]
        address = record["AddressInfo"]
        assert doc["position"] == {"type": "Point", "coordinates": [address["Longitude"], address["Latitude"]]}
        assert (doc["lat"], doc["lon"]) == (address["Latitude"], address["Longitude"])
        assert doc["raw"] == record
        assert doc["removed"] is False
        uuid.UUID(doc["_id"])
        assert doc["dataProvider"]["id"] == record["DataProviderID"]
    assert docs[2388]["attribution"]["provider"] == "afdc.energy.gov"
    assert "CC BY-SA 4.0" in docs[16318]["attribution"]["license"]
    events = publisher.of_type(OCM_SYNC_COMPLETED)
    assert len(events) == 1 and events[0]["processed"] == 1586 and events[0]["inserted"] == 1586
    assert list(events[0])[:2] == ["eventType", "source"]  # the bus Detail reads like the seed


def test_first_sync_costs_two_round_trips_per_page(standin, counted_repo, publisher, clock, opts, make_client_for):
    repo, counter = counted_repo
    client = make_client_for(standin)
    payload = run_sync(SyncDeps(client, repo, publisher, clock), opts(page_size=1000))
    assert payload["inserted"] == 1586
    pages = 2  # 1,000 + 586 records
    # Store round trips for the records: one find (all in its first batch) + one insert per page of 1,000.
    assert counter.on("ocm_stations", "find") == pages
    assert counter.count("getMore") == 0
    assert counter.on("ocm_stations", "insert") == pages
    assert counter.on("ocm_stations", "update", "delete") == 0
    # Checkpoints are single-document writes by _id to the state collection: start, after page 1, finish.
    assert counter.on("ocm_sync_state", "update") == 3


def test_resync_with_nothing_changed_writes_nothing(standin, counted_repo, publisher, clock, opts, make_client_for):
    repo, counter = counted_repo
    client = make_client_for(standin)
    run_sync(SyncDeps(client, repo, publisher, clock), opts())
    # Forget the checkpoint, so the re-sync fetches every record again (as a big overlap would).
    repo.state.delete_many({})
    counter.reset()
    clock.advance(hours=6)
    payload = run_sync(SyncDeps(client, repo, publisher, clock), opts())

    assert payload["processed"] == 1586
    assert (payload["inserted"], payload["updated"], payload["failed"]) == (0, 0, 0)
    pages = -(-1586 // PAGE)
    assert counter.on("ocm_stations", "insert", "update", "delete") == 0  # 0 writes
    assert counter.on("ocm_stations", "find") == pages  # 1 round trip per page
    assert counter.count("getMore") == 0


def test_incremental_asks_for_changes_since_last_run_minus_overlap(deps, standin, clock, opts):
    first = run_sync(deps, opts())
    clock.advance(hours=6)
    standin.requests.clear()
    second = run_sync(deps, opts())

    assert first["processed"] == 1586 and second["processed"] == 0 and second["complete"] is True
    sent = standin.requests[0]["params"]
    expected = (clock.now - __import__("datetime").timedelta(hours=6, minutes=15)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert sent["modifiedsince"] == expected
    assert sent["sortby"] == "id_asc" and sent["greaterthanid"] == "0" and sent["maxresults"] == str(PAGE)
    assert standin.requests[0]["headers"]["x-api-key"] == "test-key-123"
    assert "jucr-ocm-sync" in standin.requests[0]["headers"]["user-agent"]


def test_a_few_changed_records_are_exactly_the_ones_updated(deps, repo, standin, clock, opts):
    run_sync(deps, opts())
    before = {d["ocm_id"]: d for d in repo.stations.find({}, {"_id": 1, "ocm_id": 1, "updatedAt": 1})}
    standin.change(2388, mutate=lambda r: r["AddressInfo"].update(Title="Renamed site"))
    standin.change(16318, StatusTypeID=100)
    standin.change(2389, mutate=lambda r: r["Connections"].append({"ConnectionTypeID": 33, "PowerKW": 150,
                                                                    "Quantity": 2}))
    touched_only = standin.ids()[10]
    # Fields OCM computes from the clock alone: not an edit (no DateLastStatusUpdate change).
    standin.change(touched_only, touch=False, DateLastVerified="2030-01-01T00:00:00Z", IsRecentlyVerified=True)
    clock.advance(minutes=30)

    payload = run_sync(deps, opts())

    assert payload["processed"] == 3
    assert (payload["updated"], payload["inserted"], payload["failed"]) == (3, 0, 0)
    after = {d["ocm_id"]: d for d in repo.stations.find({})}
    changed = {i for i in after if after[i]["updatedAt"] != before[i]["updatedAt"]}
    assert len(changed) == 3 and touched_only not in changed
    assert after[2388]["title"] == "Renamed site"
    assert after[16318]["status"] == {"id": 100, "title": "Not Operational"}
    assert after[2388]["_id"] == before[2388]["_id"]  # the UUID is given once, on insert

    # A full sweep reads every record again, the time-only change included: nothing to write.
    clock.advance(minutes=30)
    sweep = run_sync(deps, opts(full=True))
    assert (sweep["processed"], sweep["updated"], sweep["inserted"], sweep["removed"]) == (1586, 0, 0, 0)


def test_500_then_success(deps, standin, repo, opts):
    standin.fail_next(2, status=500)
    payload = run_sync(deps, opts())
    assert payload["inserted"] == 1586 and payload["complete"] is True
    pages = -(-1586 // PAGE)
    assert standin.request_count == pages + 2  # two retried answers, then every page once


def test_429_with_retry_after_is_honoured(deps, standin, opts):
    import time

    standin.throttle_next(1, retry_after=1)
    began = time.monotonic()
    payload = run_sync(deps, opts())
    assert payload["inserted"] == 1586
    assert time.monotonic() - began >= 0.95  # waited for Retry-After, not the 10 ms back-off


def test_bad_key_is_a_clear_error_and_not_retried(standin, repo, publisher, clock, opts, make_client_for):
    from chalicelib.ocm.client import OcmAuthError

    client = make_client_for(standin, key="wrong")
    with pytest.raises(OcmAuthError, match="OCM_API_KEY"):
        run_sync(SyncDeps(client, repo, publisher, clock), opts())
    assert standin.request_count == 1
    assert repo.count() == 0 and publisher.published == []


def test_server_failing_throughout_leaves_the_checkpoint(deps, standin, repo, opts):
    from chalicelib.ocm.client import OcmUnavailable

    run_sync(deps, opts(max_pages=1))
    cursor = repo.load_state("incremental", deps.source.identity)["run"]["cursor"]
    standin.fail_next(10, status=503)
    with pytest.raises(OcmUnavailable):
        run_sync(deps, opts())
    assert repo.load_state("incremental", deps.source.identity)["run"]["cursor"] == cursor
    assert standin.request_count == 1 + 4  # the first page, then 1 try + 3 retries


def test_stopped_run_resumes_where_it_stopped(deps, repo, standin, fixture_records_master, opts):
    first = run_sync(deps, opts(max_pages=2))
    state = repo.load_state("incremental", deps.source.identity)
    assert first["complete"] is False and first["processed"] == 2 * PAGE
    assert state["run"]["cursor"] == sorted(r["ID"] for r in fixture_records_master)[2 * PAGE - 1]
    standin.requests.clear()

    second = run_sync(deps, opts())

    assert second["complete"] is True and second["processed"] == 1586 - 2 * PAGE
    assert standin.requests[0]["params"]["greaterthanid"] == str(state["run"]["cursor"])
    assert repo.count() == 1586
    after = repo.load_state("incremental", deps.source.identity)
    assert after["run"] is None and after["lastSuccessAt"] == state["run"]["startedAt"]


def test_run_killed_after_writing_a_page_resumes_without_loss_or_duplicates(deps, repo, standin, opts):
    real_apply = repo.apply_page
    calls = {"n": 0}

    def dying_apply(*args, **kwargs):
        outcome = real_apply(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed after the page was written, before its checkpoint")
        return outcome

    repo.apply_page = dying_apply
    with pytest.raises(KeyboardInterrupt):
        run_sync(deps, opts())
    repo.apply_page = real_apply
    assert repo.count() == 3 * PAGE
    assert repo.load_state("incremental", deps.source.identity)["run"]["cursor"] > 0

    resumed = run_sync(deps, opts())

    assert resumed["complete"] is True
    assert resumed["inserted"] == 1586 - 3 * PAGE and resumed["updated"] == 0
    assert resumed["processed"] == 1586 - 2 * PAGE  # the page it died in is read again, written no more
    assert repo.count() == 1586
    assert len(repo.stations.distinct("ocm_id")) == 1586


def test_malformed_records_are_counted_and_never_stop_the_page(standin, deps, repo, fixture_records, caplog, opts):
    bad = [
        {"ID": 900001, "AddressInfo": {"Latitude": 200, "Longitude": 10}},
        {"ID": 900002},
        {"ID": 900003, "AddressInfo": {"Latitude": 0, "Longitude": 0}},
        {"ID": 900004, "AddressInfo": {"Latitude": 50.1, "Longitude": 8.6},
         "Connections": [{"PowerKW": "lots"}]},
        {"ID": 900005, "AddressInfo": {"Latitude": 50.1, "Longitude": 8.6, "ContactEmail": "x@example.com"},
         "Connections": "none"},
    ]
    standin.set_records(fixture_records + bad)
    payload = run_sync(deps, opts())
    assert payload["failed"] == 5 and payload["inserted"] == 1586 and payload["processed"] == 1591
    assert repo.count() == 1586
    warned = [r for r in caplog.records if r.getMessage() == "OCM record failed validation"]
    assert sorted(r.ocmId for r in warned) == [item["ID"] for item in bad]
    assert all("example.com" not in str(r.__dict__) for r in caplog.records)  # no record contents logged


def test_time_limit_stops_cleanly_before_a_page(deps, repo, standin, opts):
    from chalicelib.ocm.sync import Deadline

    payload = run_sync(deps, opts(min_margin_seconds=5.0), Deadline(remaining_ms=lambda: 3000))
    assert payload["complete"] is False and payload["processed"] == 0
    assert standin.request_count == 0
    assert repo.load_state("incremental", deps.source.identity)["run"]["cursor"] == 0


class _FailingAt:
    """Delegates to the stand-in client, but the ``n``-th fetch fails as OCM going away would."""

    def __init__(self, client, n: int) -> None:
        self.client, self.n, self.calls = client, n, 0
        self.identity = client.identity

    def fetch_page(self, **kwargs):
        from chalicelib.ocm.client import OcmUnavailable

        self.calls += 1
        if self.calls == self.n:
            raise OcmUnavailable("injected")
        return self.client.fetch_page(**kwargs)


def test_api_failure_while_a_page_is_being_stored_keeps_that_page_and_its_checkpoint(deps, repo, opts,
                                                                                     fixture_records_master):
    from chalicelib.ocm.client import OcmUnavailable

    failing = SyncDeps(_FailingAt(deps.source, 3), repo, None, deps.clock)
    with pytest.raises(OcmUnavailable):
        run_sync(failing, opts())

    # Page 2 was on the store thread when the third fetch failed: it is stored, and so is its checkpoint.
    assert repo.count() == 2 * PAGE
    cursor = repo.load_state("incremental", deps.source.identity)["run"]["cursor"]
    assert cursor == sorted(r["ID"] for r in fixture_records_master)[2 * PAGE - 1]
