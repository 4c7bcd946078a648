"""The full sweep: delisted POIs removed, revived, the mass-removal guard, at a size beyond one page."""

from __future__ import annotations

import pytest

from chalicelib.ocm.client import feed_identity
from chalicelib.ocm.sync import SyncDeps, run_sync


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


class _ShortFeed:
    """A PageSource that answers with only the first ``count`` records, then nothing (a truncated feed)."""

    identity = feed_identity("http://short-feed.invalid/v3")

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


def _sweep_until_done(deps, opts, **options) -> list[dict]:
    """Run the sweep one short invocation after another, as the schedule does when time runs out."""
    runs = [run_sync(deps, opts(full=True, **options))]
    while not runs[-1]["complete"]:
        runs.append(run_sync(deps, opts(full=True, **options)))
    return runs


@pytest.fixture
def big_feed(start_feed, make_client_for, repo, clock):
    feed = start_feed(synthetic=3500)
    client = make_client_for(feed)
    yield feed, SyncDeps(client, repo, None, clock)
    client.close()


DELISTED = [1, 777, 1586, 1587, 2999, 3500]


def test_sweep_resumed_across_invocations_removes_exactly_the_delisted(big_feed, repo, clock, opts):
    feed, deps = big_feed
    run_sync(deps, opts(page_size=1000))
    for ocm_id in DELISTED:
        feed.delist(ocm_id)
    clock.advance(hours=1)

    runs = _sweep_until_done(deps, opts, page_size=1000, max_pages=2)

    assert len(runs) == 2 and sum(r["processed"] for r in runs) == 3500 - len(DELISTED)
    assert runs[-1]["removed"] == len(DELISTED)
    assert sorted(d["ocm_id"] for d in repo.stations.find({"removed": True})) == DELISTED
    assert repo.seen.count_documents({}) == 0


def test_more_unseen_than_kept_in_memory_are_found_by_a_second_pass(big_feed, repo, clock, opts, monkeypatch):
    from chalicelib.ocm import sweep

    feed, deps = big_feed
    run_sync(deps, opts(page_size=1000))
    for ocm_id in DELISTED:
        feed.delist(ocm_id)
    clock.advance(hours=1)
    monkeypatch.setattr(sweep, "KEPT_UNSEEN", 2)
    monkeypatch.setattr(sweep, "REMOVE_CHUNK", 4)

    swept = run_sync(deps, opts(full=True, page_size=1000))

    assert swept["removed"] == len(DELISTED)
    assert sorted(d["ocm_id"] for d in repo.stations.find({"removed": True})) == DELISTED


def test_a_station_rewritten_while_the_sweep_runs_is_spared(big_feed, repo, clock, opts):
    feed, deps = big_feed
    run_sync(deps, opts(page_size=1000))
    clock.advance(hours=1)
    first_part = run_sync(deps, opts(full=True, page_size=1000, max_pages=1))
    # While the sweep is paused, OCM edits POI 3000, an incremental run stores the edit, and then
    # the POI leaves the feed before the sweep gets there: the sweep cannot tell it was listed.
    clock.advance(minutes=5)
    feed.change(3000, StatusTypeID=100)
    assert run_sync(deps, opts(page_size=1000))["updated"] == 1
    feed.delist(3000)
    clock.advance(minutes=5)

    rest = run_sync(deps, opts(full=True, page_size=1000))

    assert first_part["complete"] is False and rest["complete"] is True
    assert rest["removed"] == 0 and repo.stations.find_one({"ocm_id": 3000})["removed"] is False


def test_ids_a_page_returns_below_its_start_still_count_as_seen(repo, clock):
    import datetime as dt

    from chalicelib.ocm.mapping import map_record

    start = clock()
    pois = [map_record({"ID": i, "AddressInfo": {"Latitude": 50 + i / 100, "Longitude": 8.0}}) for i in (5, 10, 20, 30)]
    repo.apply_page(pois, start - dt.timedelta(hours=1))
    # An API that ignored greaterthanid: the page after 10 also brought 5 back.
    repo.record_seen("s1", 0, [10])
    repo.record_seen("s1", 10, [5, 20, 30])

    outcome = repo.mark_unseen_removed("s1", start, clock())

    assert (outcome.candidates, outcome.removed, outcome.held) == (4, 0, 0)
