"""In-memory twins of the repositories, shared by the unit tests of more than one module.

Each twin keeps the guarantees its repository's callers rely on (a unique ``_id``, copies
handed out rather than the stored dict, the same filters), and
``tests/integration/foundation/test_fakes_match_repositories.py`` runs one set of
assertions against the twin and against the real repository on the embedded store, so a
twin that drifts from its repository fails there instead of letting a unit test pass on
behaviour production does not have.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Sequence
from typing import Any

# What ``chalicelib.dlq.repository`` stores as a record's status.
PENDING = "pending"
DONE = "done"
# ``chalicelib.ocm.repository.STATION_PROJECTION``: fields a station read never returns.
STATION_HIDDEN = ("raw", "hash")


class InMemoryDeadLetters:
    """``DeadLetterRepository`` in a dict: unique ``_id``, ``claim`` hands back the record already there."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    def claim(self, record: dict[str, Any]) -> dict[str, Any] | None:
        if record["_id"] in self.docs:
            return copy.deepcopy(self.docs[record["_id"]])
        self.docs[record["_id"]] = copy.deepcopy(dict(record, status=PENDING))
        return None

    def complete(self, key: str, fields: dict[str, Any]) -> None:
        if key in self.docs:  # an update by _id: nothing to change when the record is not there
            self.docs[key].update(copy.deepcopy(fields), status=DONE)

    def get(self, key: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.docs.get(key))

    def parked(self, queue: str, limit: int) -> list[dict[str, Any]]:
        """Decisions the reconciler gave up on, not replayed yet, oldest first (as the repository sorts)."""
        found = [d for d in self.docs.values() if d.get("queue") == queue and d.get("kind") == "decision"
                 and d.get("parked") is True and d.get("replayedAt") is None]
        found.sort(key=lambda d: d["decidedAt"])
        return copy.deepcopy(found[:limit])

    def mark_replayed(self, key: str, when: dt.datetime, replay_key: str) -> None:
        if key in self.docs:
            self.docs[key].update(replayedAt=when, replayKey=replay_key)


class InvoiceStates:
    """Billing's published ``invoice_state`` query as a table: session id -> state (absent: no invoice).

    ``asked`` lists the sessions looked up, so a test can show a decision did (or did not) ask.
    """

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        self.state: dict[str, Any] = dict(state or {})
        self.asked: list[str] = []

    def invoice_state(self, session_id: str) -> Any:
        self.asked.append(session_id)
        return self.state.get(session_id)


class InMemoryStations:
    """``MirrorRepository.in_box`` over a list: the box, both longitude ranges, live stations only, cut at ``limit``.

    Candidates come back in list order, as the store returns them in storage order (no sort),
    so a test can put far stations first and see that a cut list still finds the nearest.
    ``asked`` and ``limits`` record the calls.
    """

    def __init__(self, docs: Sequence[dict[str, Any]]) -> None:
        self.docs = [copy.deepcopy(d) for d in docs]
        self.asked: tuple[float, float, Sequence[tuple[float, float]]] | None = None
        self.limits: list[int] = []

    def in_box(self, south: float, north: float, lon_ranges: Sequence[tuple[float, float]],
               limit: int) -> list[dict[str, Any]]:
        self.asked = (south, north, lon_ranges)
        self.limits.append(limit)
        inside = [d for d in self.docs if south <= d["lat"] <= north and d.get("removed") is False
                  and any(lo <= d["lon"] <= hi for lo, hi in lon_ranges)]
        return [{k: v for k, v in d.items() if k not in STATION_HIDDEN} for d in copy.deepcopy(inside[:limit])]
