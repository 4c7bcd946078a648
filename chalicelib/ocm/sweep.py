"""The full sweep's bookkeeping: which ids each page returned, and what went unseen.

OCM drops a delisted POI from the feed without a trace, so the only way to notice
is to read every POI and look for mirror stations that did not come back. Stamping
each seen station would be one write per unchanged POI per sweep; instead each page
leaves one small document with its ids (``ocm_sweep_seen``), and the end of the
sweep compares those with the mirror.

The comparison streams: the pages are read in id order (each page holds only ids
above the id it started after, so the pages are disjoint and ascending) and merged
with the live stations read in ``ocm_id`` order from the unique index. Memory stays
one page plus one cursor batch, whatever the mirror's size.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo.collection import Collection

from chalicelib.store import IndexSpec, translate_errors

SWEEP_SEEN = "ocm_sweep_seen"
INDEXES: list[IndexSpec] = [
    IndexSpec(collection=SWEEP_SEEN, keys=(("sweepId", 1), ("after", 1)), name="ocm_sweep_seen_sweep_after"),
]
REMOVE_CHUNK = 1000  # ids per update_many: one round trip each, far below any message limit
KEPT_UNSEEN = 10000  # unseen ids held from the counting pass; more than this are found again by a second pass
_CURSOR_BATCH = 5000


@dataclass
class RemovalOutcome:
    """What the end of a full sweep did: ``held`` > 0 means the mass-removal guard refused."""

    removed: int = 0
    held: int = 0
    candidates: int = 0
    seen: int = 0  # candidates the sweep saw


def record_seen(seen: Collection, sweep_id: str, after_id: int, ocm_ids: Sequence[int]) -> None:
    """Remember which ids one page of a sweep returned: one small document per page.

    Keyed by sweep and page start, so a page read again after a crash replaces its own
    record. Ids at or below ``after_id`` would break the pages' order; the API never
    sends them for ``greaterthanid``, but if one does they are kept apart (``early``)
    rather than lost, since losing a seen id could remove a live station.
    """
    doc: dict[str, Any] = {"sweepId": sweep_id, "after": after_id,
                           "ids": sorted({i for i in ocm_ids if i > after_id})}
    early = sorted({i for i in ocm_ids if i <= after_id})
    if early:
        doc["early"] = early
    with translate_errors("record sweep page"):
        seen.replace_one({"_id": f"{sweep_id}:{after_id}"}, doc, upsert=True)


def mark_unseen_removed(stations: Collection, seen: Collection, sweep_id: str, sweep_started_at: dt.datetime,
                        now: dt.datetime, countries: Iterable[str] = (), max_share: float = 1.0) -> RemovalOutcome:
    """Soft-delete every live POI the completed sweep did not see, unless that is too many.

    ``seenAt < sweep start`` spares POIs an incremental run inserted or rewrote while
    the sweep was under way. With ``OCM_COUNTRIES`` set the sweep only covered those
    countries, so only they are candidates.

    OCM delists a handful of POIs a day. When the unseen share of the live candidates
    exceeds ``max_share``, the likelier story is a short or empty feed (an outage, a
    filter change, a truncated answer), not a mass delisting: nothing is removed and
    the outcome says how many were held.
    """
    query: dict[str, Any] = {"removed": False, "seenAt": {"$lt": sweep_started_at}}
    countries = list(countries)
    if countries:
        query["address.countryCode"] = {"$in": countries}
    outcome, unseen, kept = RemovalOutcome(), 0, []
    for ocm_id, was_seen in _compare(stations, seen, sweep_id, query):
        outcome.candidates += 1
        if not was_seen:
            unseen += 1
            if len(kept) < KEPT_UNSEEN:
                kept.append(ocm_id)
    outcome.seen = outcome.candidates - unseen
    if unseen and unseen > max_share * outcome.candidates:
        outcome.held = unseen
    elif unseen <= len(kept):
        outcome.removed = _remove(stations, kept, query, now)
    else:  # too many to have held in memory: find them again, removing as the scan goes
        outcome.removed = _remove(stations, (i for i, was_seen in _compare(stations, seen, sweep_id, query)
                                             if not was_seen), query, now)
    with translate_errors("forget sweep pages"):
        seen.delete_many({"sweepId": sweep_id})
    return outcome


def _seen_ids(seen: Collection, sweep_id: str) -> Iterator[int]:
    """The sweep's ids in ascending order, one page document at a time."""
    with translate_errors("read sweep pages"):
        for page in seen.find({"sweepId": sweep_id}, {"ids": 1}).sort("after", 1):
            yield from page["ids"]


def _early_ids(seen: Collection, sweep_id: str) -> set[int]:
    with translate_errors("read sweep pages"):
        return {i for page in seen.find({"sweepId": sweep_id, "early": {"$exists": True}}, {"early": 1})
                for i in page["early"]}


def _compare(stations: Collection, seen: Collection, sweep_id: str,
             query: dict[str, Any]) -> Iterator[tuple[int, bool]]:
    """Every live candidate's ``ocm_id`` in ascending order, with whether the sweep saw it."""
    early = _early_ids(seen, sweep_id)
    seen_ids = _seen_ids(seen, sweep_id)
    next_seen = next(seen_ids, None)
    with translate_errors("scan live stations"):
        live = stations.find(query, {"_id": 0, "ocm_id": 1}).sort("ocm_id", 1).batch_size(_CURSOR_BATCH)
        for doc in live:
            ocm_id = doc["ocm_id"]
            while next_seen is not None and next_seen < ocm_id:
                next_seen = next(seen_ids, None)
            yield ocm_id, next_seen == ocm_id or ocm_id in early


def _remove(stations: Collection, ocm_ids: Iterable[int], query: dict[str, Any], now: dt.datetime) -> int:
    """Mark these stations removed in chunks; the sweep's filter is repeated so a station
    rewritten since the scan (an incremental run saw it) is left alone."""
    removed, chunk = 0, []
    for ocm_id in ocm_ids:
        chunk.append(ocm_id)
        if len(chunk) == REMOVE_CHUNK:
            removed += _remove_chunk(stations, chunk, query, now)
            chunk = []
    if chunk:
        removed += _remove_chunk(stations, chunk, query, now)
    return removed


def _remove_chunk(stations: Collection, chunk: list[int], query: dict[str, Any], now: dt.datetime) -> int:
    with translate_errors("mark removed stations"):
        result = stations.update_many({**query, "ocm_id": {"$in": chunk}},
                                      {"$set": {"removed": True, "removedAt": now, "updatedAt": now}})
    return result.modified_count
