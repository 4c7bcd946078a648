"""Mirror data access: change-aware page writes, removals, checkpoints, nearby reads.

Written for FerretDB's measured limits as much as MongoDB's: a page costs ONE
``find`` by ``ocm_id $in`` (projection: id, hash, removed, sweep id), then
``insert_many`` for new POIs and ``UpdateOne`` by ``_id`` for changed ones only
(cut below FerretDB's 100-update deadlock by ``bulk_write_chunked``). An
unchanged page is one round trip and no write. ``_id`` is a random UUID given
once on insert; the unique ``ocm_id`` index makes "one document per POI" hold
even when two runs insert the same POI at once. A full sweep remembers the ids
it saw in one small document per page (``ocm_sweep_seen``), never by touching
the unchanged stations themselves.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from chalicelib.ocm.mapping import MappedPoi
from chalicelib.store import IndexSpec, translate_errors
from chalicelib.store.batches import bulk_write

STATIONS = "ocm_stations"
SYNC_STATE = "ocm_sync_state"
SWEEP_SEEN = "ocm_sweep_seen"

INDEXES: list[IndexSpec] = [
    IndexSpec(collection=STATIONS, keys=(("ocm_id", 1),), unique=True, name="ocm_stations_ocm_id_unique"),
    IndexSpec(collection=STATIONS, keys=(("lat", 1), ("lon", 1)), name="ocm_stations_lat_lon"),
    IndexSpec(collection=SWEEP_SEEN, keys=(("sweepId", 1),), name="ocm_sweep_seen_sweep"),
]

_EXISTING_PROJECTION = {"_id": 1, "ocm_id": 1, "hash": 1, "removed": 1}
STATION_PROJECTION = {"raw": 0, "hash": 0}


@dataclass
class PageOutcome:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    round_trips: int = 0


@dataclass
class RemovalOutcome:
    """What the end of a full sweep did: ``held`` > 0 means the mass-removal guard refused."""

    removed: int = 0
    held: int = 0
    candidates: int = 0
    seen: int = 0


class MirrorRepository:
    """The OCM mirror in one collection plus a small state collection for checkpoints."""

    def __init__(self, db: Database, max_batch_ops: int = 90) -> None:
        self.db = db
        self.stations = db[STATIONS]
        self.state = db[SYNC_STATE]
        self.seen = db[SWEEP_SEEN]
        self.max_batch_ops = max_batch_ops

    # --- sync writes ---------------------------------------------------------------------------

    def apply_page(self, pois: Sequence[MappedPoi], now: dt.datetime) -> PageOutcome:
        """Insert new POIs, rewrite changed or revived ones, leave unchanged ones alone."""
        outcome = PageOutcome()
        latest = {p.ocm_id: p for p in pois}  # a repeated id in one page: the last one wins
        if not latest:
            return outcome
        existing = self._existing(list(latest), outcome)
        new_docs, updates = [], []
        for ocm_id, poi in latest.items():
            current = existing.get(ocm_id)
            if current is None:
                new_docs.append(self._new_doc(poi, now))
            elif current.get("hash") != poi.hash or current.get("removed"):
                updates.append(UpdateOne({"_id": current["_id"]}, {"$set": self._changed_fields(poi, now)}))
            else:
                outcome.unchanged += 1
        duplicates = self._insert(new_docs, outcome)
        if updates:
            result = bulk_write(self.stations, updates)
            outcome.round_trips += result.round_trips
            outcome.updated += result.matched
        if duplicates:  # another run inserted them between our find and insert: treat as existing
            again = self.apply_page([latest[i] for i in duplicates], now)
            outcome.updated += again.updated + again.inserted
            outcome.unchanged += again.unchanged
            outcome.round_trips += again.round_trips
        return outcome

    def _existing(self, ids: list[int], outcome: PageOutcome) -> dict[int, dict[str, Any]]:
        with translate_errors("find existing stations"):
            found = list(self.stations.find({"ocm_id": {"$in": ids}}, _EXISTING_PROJECTION))
        outcome.round_trips += 1
        return {doc["ocm_id"]: doc for doc in found}

    def _insert(self, docs: list[dict[str, Any]], outcome: PageOutcome) -> list[int]:
        """insert_many unordered; returns the ocm ids that hit the unique index (inserted elsewhere)."""
        if not docs:
            return []
        outcome.round_trips += 1
        try:
            with translate_errors("insert stations"):
                self.stations.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errors):
                raise
            duplicates = [docs[e["index"]]["ocm_id"] for e in errors]
            outcome.inserted += len(docs) - len(duplicates)
            return duplicates
        outcome.inserted += len(docs)
        return []

    @staticmethod
    def _new_doc(poi: MappedPoi, now: dt.datetime) -> dict[str, Any]:
        return {"_id": str(uuid.uuid4()), **poi.body, "hash": poi.hash, "removed": False, "removedAt": None,
                "firstSeenAt": now, "seenAt": now, "updatedAt": now}

    @staticmethod
    def _changed_fields(poi: MappedPoi, now: dt.datetime) -> dict[str, Any]:
        return {**poi.body, "hash": poi.hash, "removed": False, "removedAt": None, "seenAt": now, "updatedAt": now}

    # --- full sweep ------------------------------------------------------------------------------

    def record_seen(self, sweep_id: str, after_id: int, ocm_ids: Sequence[int]) -> None:
        """Remember which ids one page of a sweep returned: one small document per page.

        Stamping every seen station instead would be one document update per POI,
        about 30 ms each on FerretDB (a 100k sweep would take the better part of an
        hour); one document per page costs one round trip. Keyed by sweep and page
        start, so a page read again after a crash replaces its own record.
        """
        with translate_errors("record sweep page"):
            self.seen.replace_one({"_id": f"{sweep_id}:{after_id}"},
                                  {"sweepId": sweep_id, "ids": list(ocm_ids)}, upsert=True)

    def mark_unseen_removed(self, sweep_id: str, sweep_started_at: dt.datetime, now: dt.datetime,
                            countries: Iterable[str] = (), max_share: float = 1.0) -> RemovalOutcome:
        """Soft-delete every live POI the completed sweep did not see, unless that is too many.

        Holds the sweep's id set (ints) in memory once, at the end. ``seenAt <
        sweep start`` spares POIs an incremental run inserted or rewrote while the
        sweep was under way. With ``OCM_COUNTRIES`` set the sweep only covered
        those countries, so only they are candidates.

        OCM delists a handful of POIs a day. When the unseen share of the live
        candidates exceeds ``max_share``, the likelier story is a short or empty
        feed (an outage, a filter change, a truncated answer), not a mass
        delisting: nothing is removed and the outcome says how many were held.
        """
        with translate_errors("read sweep pages"):
            seen: set[int] = set()
            for page in self.seen.find({"sweepId": sweep_id}, {"ids": 1}):
                seen.update(page["ids"])
        query: dict[str, Any] = {"removed": False, "seenAt": {"$lt": sweep_started_at}}
        countries = list(countries)
        if countries:
            query["address.countryCode"] = {"$in": countries}
        with translate_errors("find live stations"):
            live = list(self.stations.find(query, {"_id": 1, "ocm_id": 1}))
        missing = [d["_id"] for d in live if d["ocm_id"] not in seen]
        outcome = RemovalOutcome(candidates=len(live), seen=len(seen))
        if missing and len(missing) > max_share * len(live):
            outcome.held = len(missing)
            missing = []
        for start in range(0, len(missing), 1000):
            with translate_errors("mark removed stations"):
                result = self.stations.update_many(
                    {"_id": {"$in": missing[start:start + 1000]}, "removed": False},
                    {"$set": {"removed": True, "removedAt": now, "updatedAt": now}},
                )
            outcome.removed += result.modified_count
        with translate_errors("forget sweep pages"):
            self.seen.delete_many({"sweepId": sweep_id})
        return outcome

    # --- checkpoints ---------------------------------------------------------------------------

    def load_state(self, mode: str) -> dict[str, Any]:
        with translate_errors("load sync state"):
            return self.state.find_one({"_id": mode}) or {"_id": mode}

    def save_run(self, mode: str, run: dict[str, Any] | None, last_success_at: dt.datetime | None = None) -> None:
        """Write the in-progress run (its cursor) or, with ``run=None``, mark the run finished."""
        update: dict[str, Any] = {"run": run}
        if last_success_at is not None:
            update["lastSuccessAt"] = last_success_at
        with translate_errors("save sync state"):
            self.state.update_one({"_id": mode}, {"$set": update}, upsert=True)

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
