"""The two scheduled OCM functions from the package, fed EventBridge's scheduled event."""

from __future__ import annotations

import pytest

from tests.package.conftest import scheduled_event

pytestmark = pytest.mark.xdist_group("package")


def test_scheduled_sync_mirrors_the_feed_and_publishes_completion(synced, stage, store):
    result, ids = synced["result"], stage.standin.ids()
    assert result["processed"] == len(ids) and result["failed"] == 0
    assert store.ocm_stations.count_documents({}) == len(ids)
    station = store.ocm_stations.find_one({"ocm_id": ids[0]})
    assert station["attribution"]["license"] and isinstance(station["lat"], float)
    completed = [e for e in synced["published"] if e["detail-type"] == "OCM_SYNC_COMPLETED"]
    assert [e["detail"]["processed"] for e in completed] == [len(ids)]


def test_full_sweep_marks_delisted_stations_removed(synced, functions, stage, store):
    gone = stage.standin.ids()[-1]
    stage.standin.delist(gone)
    try:
        result = functions.invoke("ocm_full_sweep", scheduled_event("jucr-prod-ocm_full_sweep"))
    finally:
        stage.published()
    assert result["failed"] == 0 and result["processed"] == len(stage.standin.ids())
    assert store.ocm_stations.find_one({"ocm_id": gone})["removed"] is True
    assert store.ocm_stations.count_documents({"removed": True}) == 1
