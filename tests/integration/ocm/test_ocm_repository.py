"""Page writes: one read and one bulk write per page, and a POI inserted by a racing run."""

from __future__ import annotations

import datetime as dt

from chalicelib.ocm.mapping import map_record
from chalicelib.ocm.sync import SyncDeps, run_sync

NOW = dt.datetime(2026, 3, 1, 6, 0, tzinfo=dt.UTC)


def _pois(records):
    return [map_record(r) for r in records]


def test_new_and_changed_records_of_a_page_cost_one_read_and_one_bulk_write(standin, counted_repo, clock, opts,
                                                                           make_client_for):
    repo, counter = counted_repo
    client = make_client_for(standin)
    deps = SyncDeps(client, repo, None, clock)
    run_sync(deps, opts(page_size=1000))
    for ocm_id in (2388, 2389, 16318):
        standin.change(ocm_id, StatusTypeID=100)
    for ocm_id in (900001, 900002):
        standin.relist(dict(standin.record(2388), ID=ocm_id), touch=True)
    clock.advance(minutes=30)
    counter.reset()

    payload = run_sync(deps, opts(page_size=1000))

    assert (payload["processed"], payload["updated"], payload["inserted"]) == (5, 3, 2)
    # One page: one find, then one bulk_write, which the driver sends as one insert and one update.
    assert counter.on("ocm_stations", "find") == 1 and counter.count("getMore") == 0
    assert counter.on("ocm_stations", "insert") == 1 and counter.on("ocm_stations", "update") == 1
    client.close()


def test_a_poi_inserted_by_a_racing_run_is_treated_as_existing(repo, fixture_records_master, monkeypatch):
    page = sorted(fixture_records_master, key=lambda r: r["ID"])[:10]
    # The other run stored these three first, one of them in an older version.
    older = dict(page[1], StatusTypeID=(page[1].get("StatusTypeID") or 0) + 1)
    repo.apply_page(_pois([page[0], older, page[2]]), NOW)
    real_existing = repo._existing
    calls = []

    def blind_first_read(ids, outcome):
        calls.append(len(ids))
        found = real_existing(ids, outcome)
        return {} if len(calls) == 1 else found  # our read happened before the other run's inserts

    monkeypatch.setattr(repo, "_existing", blind_first_read)
    outcome = repo.apply_page(_pois(page), NOW + dt.timedelta(minutes=1))

    assert (outcome.inserted, outcome.updated, outcome.unchanged) == (7, 1, 2)
    assert calls == [10, 10]  # the page's new POIs were checked again after the duplicate keys
    assert repo.count() == 10 and len(repo.stations.distinct("ocm_id")) == 10
    assert repo.stations.find_one({"ocm_id": page[1]["ID"]})["status"]["id"] == page[1]["StatusTypeID"]


def test_a_page_repeating_an_id_keeps_the_last_version(repo, fixture_records_master):
    record = fixture_records_master[0]
    later = map_record(dict(record, StatusTypeID=100))
    outcome = repo.apply_page([map_record(record), later], NOW)
    assert (outcome.inserted, outcome.updated) == (1, 0)
    assert repo.stations.find_one({"ocm_id": record["ID"]})["status"]["id"] == 100
