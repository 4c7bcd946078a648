"""Mirror data access: change-aware page writes, checkpoints per feed, nearby reads.

A page costs one ``find`` by ``ocm_id $in`` on the unique index (projection: id,
hash, removed) and, only when something is new or changed, one unordered bulk
write: ``InsertOne`` for new POIs, ``UpdateOne`` by ``ocm_id`` for changed or
revived ones (the driver sends one command per kind of write). An unchanged page
is one round trip and no write. ``_id`` is a random UUID given once on insert;
the unique ``ocm_id`` index makes "one document per POI" hold even when two runs
insert the same POI at once. The full sweep's bookkeeping is in ``sweep.py``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pymongo import InsertOne, UpdateOne
from pymongo.database import Database

from chalicelib.observability.logs import logger
from chalicelib.ocm import sweep
from chalicelib.ocm.mapping import MappedPoi
from chalicelib.ocm.sweep import RemovalOutcome
from chalicelib.store import IndexSpec, translate_errors
from chalicelib.store.batches import BulkOutcome, bulk_write

if TYPE_CHECKING:
    from chalicelib.ocm.client import FeedIdentity

STATIONS = "ocm_stations"
SYNC_STATE = "ocm_sync_state"

INDEXES: list[IndexSpec] = [
    IndexSpec(collection=STATIONS, keys=(("ocm_id", 1),), unique=True, name="ocm_stations_ocm_id_unique"),
    IndexSpec(collection=STATIONS, keys=(("lat", 1), ("lon", 1)), name="ocm_stations_lat_lon"),
    *sweep.INDEXES,
]

_EXISTING_PROJECTION = {"_id": 0, "ocm_id": 1, "hash": 1, "removed": 1}
STATION_PROJECTION = {"raw": 0, "hash": 0}

__all__ = ["INDEXES", "MirrorRepository", "PageOutcome", "RemovalOutcome"]


@dataclass
class PageOutcome:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    round_trips: int = 0
    failed: int = 0  # POIs the server refused to store (skipped; the page still lands)
    failed_ids: list[int] = field(default_factory=list)


class MirrorRepository:
    """The OCM mirror in one collection, plus small collections for checkpoints and sweeps."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.stations = db[STATIONS]
        self.state = db[SYNC_STATE]
        self.seen = db[sweep.SWEEP_SEEN]

    # --- sync writes ---------------------------------------------------------------------------

    def apply_page(self, pois: Sequence[MappedPoi], now: dt.datetime) -> PageOutcome:
        """Insert new POIs, rewrite changed or revived ones, leave unchanged ones alone."""
        outcome = PageOutcome()
        latest = {p.ocm_id: p for p in pois}  # a repeated id in one page: the last one wins
        if not latest:
            return outcome
        existing = self._existing(list(latest), outcome)
        new_ids = [i for i in latest if i not in existing]
        changed = [i for i, current in existing.items()
                   if current.get("hash") != latest[i].hash or current.get("removed")]
        ids = new_ids + changed
        operations = [InsertOne(self._new_doc(latest[i], now)) for i in new_ids]
        operations += [UpdateOne({"ocm_id": i}, {"$set": self._changed_fields(latest[i], now)}) for i in changed]
        if operations:
            result, refused = self._bulk(operations, ids)
            outcome.round_trips += bool(new_ids) + bool(changed)
            outcome.inserted += result.inserted
            outcome.updated += result.matched
            outcome.failed += len(refused)
            outcome.failed_ids += refused
            if result.duplicate_keys:
                # Another run inserted some of these POIs between our find and our write:
                # check the new ones again as existing (their content may differ from ours).
                again = self.apply_page([latest[i] for i in new_ids if i not in refused], now)
                outcome.updated += again.updated
                outcome.round_trips += again.round_trips
                outcome.failed += again.failed
                outcome.failed_ids += again.failed_ids
        outcome.unchanged = len(latest) - outcome.inserted - outcome.updated - outcome.failed
        return outcome

    def _existing(self, ids: list[int], outcome: PageOutcome) -> dict[int, dict[str, Any]]:
        with translate_errors("find existing stations"):
            found = self.stations.find({"ocm_id": {"$in": ids}}, _EXISTING_PROJECTION, batch_size=len(ids) + 1)
            existing = {doc["ocm_id"]: doc for doc in found}
        outcome.round_trips += 1
        return existing

    def _bulk(self, operations: list[Any], ids: list[int]) -> tuple[BulkOutcome, list[int]]:
        """One unordered write; the POIs the server refuses are returned, not raised.

        A record the server will not store (too large, a shape it refuses) is one bad
        record: the rest of the unordered write has landed, so the page is counted
        and checkpointed and the refused ids are reported as failed. Raising instead
        would keep the cursor in place and re-fetch the same page on every run.
        Busy or interrupted codes are still raised, so the page is retried.
        """
        outcome = bulk_write(self.stations, operations)
        for position, code in outcome.refused.items():
            logger.warning("OCM station refused by the store; skipped", extra={"ocmId": ids[position], "code": code})
        return outcome, [ids[position] for position in outcome.refused]

    @staticmethod
    def _new_doc(poi: MappedPoi, now: dt.datetime) -> dict[str, Any]:
        return {"_id": str(uuid.uuid4()), **poi.body, "hash": poi.hash, "removed": False, "removedAt": None,
                "firstSeenAt": now, "seenAt": now, "updatedAt": now}

    @staticmethod
    def _changed_fields(poi: MappedPoi, now: dt.datetime) -> dict[str, Any]:
        return {**poi.body, "hash": poi.hash, "removed": False, "removedAt": None, "seenAt": now, "updatedAt": now}

    # --- full sweep ------------------------------------------------------------------------------

    def record_seen(self, sweep_id: str, after_id: int, ocm_ids: Sequence[int]) -> None:
        sweep.record_seen(self.seen, sweep_id, after_id, ocm_ids)

    def mark_unseen_removed(self, sweep_id: str, sweep_started_at: dt.datetime, now: dt.datetime,
                            countries: Iterable[str] = (), max_share: float = 1.0) -> RemovalOutcome:
        return sweep.mark_unseen_removed(self.stations, self.seen, sweep_id, sweep_started_at, now,
                                         countries, max_share)

    # --- checkpoints ---------------------------------------------------------------------------

    @staticmethod
    def _state_id(mode: str, feed: FeedIdentity) -> str:
        # One checkpoint per mode and feed: a mirror pointed at another URL or country set
        # finds no checkpoint and reads that feed in full instead of skipping its older records.
        return f"{mode}:{feed.key}"

    def load_state(self, mode: str, feed: FeedIdentity) -> dict[str, Any]:
        state_id = self._state_id(mode, feed)
        with translate_errors("load sync state"):
            return self.state.find_one({"_id": state_id}) or {"_id": state_id}

    def save_run(self, mode: str, feed: FeedIdentity, run: dict[str, Any] | None,
                 last_success_at: dt.datetime | None = None) -> None:
        """Write the in-progress run (its cursor) or, with ``run=None``, mark the run finished."""
        update: dict[str, Any] = {"run": run, "mode": mode,
                                  "feed": {"url": feed.url, "countries": list(feed.countries)}}
        if last_success_at is not None:
            update["lastSuccessAt"] = last_success_at
        with translate_errors("save sync state"):
            self.state.update_one({"_id": self._state_id(mode, feed)}, {"$set": update}, upsert=True)

    # --- reads ---------------------------------------------------------------------------------

    def in_box(self, south: float, north: float, lon_ranges: Sequence[tuple[float, float]],
               limit: int) -> list[dict[str, Any]]:
        """Live stations inside the box; ``lon_ranges`` has two parts when the box crosses 180°."""
        lon_filters = [{"lon": {"$gte": lo, "$lte": hi}} for lo, hi in lon_ranges]
        query: dict[str, Any] = {"lat": {"$gte": south, "$lte": north}, "removed": False}
        if len(lon_filters) == 1:
            query.update(lon_filters[0])
        else:
            query["$or"] = lon_filters
        with translate_errors("stations in box"):
            return list(self.stations.find(query, STATION_PROJECTION).limit(limit))

    def by_ocm_id(self, ocm_id: int) -> dict[str, Any] | None:
        with translate_errors("station by ocm id"):
            return self.stations.find_one({"ocm_id": ocm_id}, STATION_PROJECTION)

    def count(self, query: dict[str, Any] | None = None) -> int:
        with translate_errors("count stations"):
            return self.stations.count_documents(query or {})
