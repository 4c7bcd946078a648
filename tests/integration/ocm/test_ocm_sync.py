"""The sync worker against the stand-in API and the embedded store (FerretDB)."""

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


def test_first_sync_costs_at_most_two_round_trips_per_page(standin, counted_repo, publisher, clock, opts,
                                                           make_client_for):
    repo, counter = counted_repo
    client = make_client_for(standin)
    payload = run_sync(SyncDeps(client, repo, publisher, clock), opts(page_size=1000))
    assert payload["inserted"] == 1586
    pages = 2  # 1,000 + 586 records
    # Store round trips for the records: one find + one insert_many per page of 1,000.
    assert counter.on("ocm_stations", "find") == pages
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
    standin.change(2389 if 2389 in standin.records else sorted(standin.records)[5],
                   mutate=lambda r: r["Connections"].append({"ConnectionTypeID": 33, "PowerKW": 150, "Quantity": 2}))
    touched_only = sorted(standin.records)[10]
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


def test_delisted_record_is_marked_removed_by_full_sweep_and_revived(deps, repo, standin, clock, opts):
    run_sync(deps, opts())
    gone = standin.delist(16318)
    clock.advance(hours=1)
    sweep = run_sync(deps, opts(full=True))

    assert sweep["removed"] == 1 and sweep["processed"] == 1585 and sweep["updated"] == 0
    doc = repo.stations.find_one({"ocm_id": 16318})
    assert doc["removed"] is True and doc["removedAt"] is not None
    assert repo.count({"removed": True}) == 1

    standin.relist(gone)
    clock.advance(hours=1)
    again = run_sync(deps, opts(full=True))
    assert again["removed"] == 0 and again["updated"] == 1
    doc = repo.stations.find_one({"ocm_id": 16318})
    assert doc["removed"] is False and doc["removedAt"] is None
    assert repo.count({"removed": True}) == 0


def test_incremental_does_not_remove_anything(deps, repo, standin, clock, opts):
    run_sync(deps, opts())
    standin.delist(16318)
    clock.advance(hours=1)
    payload = run_sync(deps, opts())
    assert payload["removed"] == 0 and repo.count({"removed": True}) == 0


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
    cursor = repo.load_state("incremental")["run"]["cursor"]
    standin.fail_next(10, status=503)
    with pytest.raises(OcmUnavailable):
        run_sync(deps, opts())
    assert repo.load_state("incremental")["run"]["cursor"] == cursor
    assert standin.request_count == 1 + 4  # the first page, then 1 try + 3 retries


def test_stopped_run_resumes_where_it_stopped(deps, repo, standin, fixture_records_master, opts):
    first = run_sync(deps, opts(max_pages=2))
    state = repo.load_state("incremental")
    assert first["complete"] is False and first["processed"] == 2 * PAGE
    assert state["run"]["cursor"] == sorted(r["ID"] for r in fixture_records_master)[2 * PAGE - 1]
    standin.requests.clear()

    second = run_sync(deps, opts())

    assert second["complete"] is True and second["processed"] == 1586 - 2 * PAGE
    assert standin.requests[0]["params"]["greaterthanid"] == str(state["run"]["cursor"])
    assert repo.count() == 1586
    assert repo.load_state("incremental")["run"] is None
    assert repo.load_state("incremental")["lastSuccessAt"] == state["run"]["startedAt"]


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
    assert repo.load_state("incremental")["run"]["cursor"] > 0

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
    assert repo.load_state("incremental")["run"]["cursor"] == 0


class _ShortFeed:
    """A PageSource that answers with only the first ``count`` records, then nothing (a truncated feed)."""

    def __init__(self, records: list[dict], count: int) -> None:
        self.records = records[:count]

    def fetch_page(self, *, after_id: int, page_size: int, modified_since=None) -> list[dict]:
        return [r for r in self.records if r["ID"] > after_id][:page_size]


@pytest.mark.parametrize("count", [0, 300])
def test_full_sweep_seeing_too_few_stations_removes_nothing(deps, repo, clock, opts, fixture_records_master,
                                                             count, caplog, monkeypatch):
    from chalicelib.observability.metrics import metrics

    added: list[tuple[str, float]] = []
    monkeypatch.setattr(metrics, "add_metric", lambda name, unit, value: added.append((name, value)))
    run_sync(deps, opts())
    clock.advance(hours=1)
    short = SyncDeps(source=_ShortFeed(sorted(fixture_records_master, key=lambda r: r["ID"]), count),
                     repo=repo, publisher=None, clock=clock)

    with caplog.at_level("ERROR"):
        sweep = run_sync(short, opts(full=True))

    assert sweep["complete"] is True and sweep["processed"] == count
    assert sweep["removed"] == 0 and repo.count({"removed": True}) == 0
    assert ("OcmSweepRemovalHeld", 1586 - count) in added
    assert "removal held" in caplog.text
    assert repo.seen.count_documents({}) == 0  # the sweep's page records are forgotten either way


def test_full_sweep_removes_a_large_share_when_the_guard_is_opened(deps, repo, clock, opts, fixture_records_master):
    run_sync(deps, opts())
    clock.advance(hours=1)
    short = SyncDeps(source=_ShortFeed(sorted(fixture_records_master, key=lambda r: r["ID"]), 300),
                     repo=repo, publisher=None, clock=clock)

    sweep = run_sync(short, opts(full=True, max_removal_share=1.0))

    assert sweep["removed"] == 1586 - 300 == repo.count({"removed": True})
