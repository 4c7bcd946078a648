"""The sync worker: page through ``/poi``, write changes, checkpoint, report.

Incremental runs ask for ``modifiedsince`` = last successful run start minus
the overlap window (OCM's clock and ours differ, and a POI edited while we page
lands behind our cursor: the overlap catches both on the next run). A full
sweep asks for everything and then soft-deletes what it did not see, because a
delisted POI simply vanishes from the feed.

The checkpoint (``run.cursor``, the highest OCM id safely written) moves only
after a page is stored, so a run that is killed or runs out of time resumes at
the next page with the same window; re-writing the page it died in is harmless
(the content hash makes it a no-op). Before each page the worker asks the
deadline whether another page still fits, and otherwise stops cleanly.

Page k is stored on a second thread while page k+1 is fetched and mapped: the
API, the mapping and the store each wait on something else, and a 100,000-record
first sync took about a quarter less time so. One page at most is in flight, so memory
is two pages whatever the size of the feed.

Checkpoints belong to the feed they were made from (API URL + country set, see
``client.feed_identity``): "stored up to T" is only true of that feed, so a mirror
pointed elsewhere starts with no checkpoint and reads the new feed in full.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.contracts.events import OCM_SYNC_COMPLETED, derived_event_id
from chalicelib.contracts.fields import iso_utc
from chalicelib.events.publisher import OutgoingEvent, Publisher
from chalicelib.observability.logs import logger
from chalicelib.ocm.mapping import MappedPoi, RecordInvalid, map_record
from chalicelib.ocm.repository import MirrorRepository, PageOutcome, RemovalOutcome

if TYPE_CHECKING:
    from chalicelib.ocm.client import FeedIdentity

SOURCE = "ocm-sync-worker"
INCREMENTAL = "incremental"
FULL = "full"


class PageSource(Protocol):
    identity: FeedIdentity  # which feed this is: checkpoints are kept per feed

    def fetch_page(self, *, after_id: int, page_size: int, modified_since: dt.datetime | None = None) -> list[dict]:
        ...


class Deadline:
    """Time left for this invocation; ``None`` remaining means "no limit" (the CLI)."""

    def __init__(self, remaining_ms: Callable[[], int] | None = None, budget_seconds: float | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._remaining_ms = remaining_ms
        self._monotonic = monotonic
        self._budget_end = monotonic() + budget_seconds if budget_seconds is not None else None

    def seconds_left(self) -> float | None:
        candidates = []
        if self._remaining_ms is not None:
            candidates.append(self._remaining_ms() / 1000.0)
        if self._budget_end is not None:
            candidates.append(self._budget_end - self._monotonic())
        return min(candidates) if candidates else None


@dataclass(frozen=True)
class SyncOptions:
    full: bool = False
    page_size: int = 1000
    overlap: dt.timedelta = dt.timedelta(minutes=15)
    countries: tuple[str, ...] = ()
    max_pages: int | None = None
    min_margin_seconds: float = 10.0  # never start a page with less than this left
    # A full sweep removes nothing when more than this share of live stations went unseen
    # (a short or empty feed, not a mass delisting); 1.0 turns the guard off.
    max_removal_share: float = 0.5


@dataclass
class SyncTotals:
    processed: int = 0
    inserted: int = 0
    updated: int = 0
    failed: int = 0
    removed: int = 0
    removal_held: int = 0
    pages: int = 0
    round_trips: int = 0
    failed_ids: list[Any] = field(default_factory=list)


@dataclass
class SyncDeps:
    source: PageSource
    repo: MirrorRepository
    publisher: Publisher | None
    clock: Callable[[], dt.datetime]
    progress: Callable[[str], None] | None = None


def map_page(records: list[Any], totals: SyncTotals) -> list[MappedPoi]:
    """Map each record; a bad one is counted and logged by id (no contents: they hold contact data)."""
    mapped = []
    for record in records:
        try:
            mapped.append(map_record(record))
        except RecordInvalid as exc:
            totals.failed += 1
            if len(totals.failed_ids) < 100:
                totals.failed_ids.append(exc.ocm_id)
            logger.warning("OCM record failed validation", extra={"ocmId": exc.ocm_id,
                                                                  "fields": sorted(exc.problems)})
    return mapped


def _ids(records: list[Any]) -> list[int]:
    """Every readable OCM id of a page, valid record or not (a malformed POI still exists upstream)."""
    ids = [r.get("ID") for r in records if isinstance(r, dict)]
    return [i for i in ids if isinstance(i, int) and not isinstance(i, bool)]


def _page_cursor(records: list[Any], after_id: int) -> int:
    return max([after_id, *_ids(records)])


def _start_run(deps: SyncDeps, mode: str, options: SyncOptions, now: dt.datetime) -> dict[str, Any]:
    """Resume the run a previous invocation left, or begin a new one."""
    feed = deps.source.identity
    state = deps.repo.load_state(mode, feed)
    run = state.get("run")
    if run:
        logger.info("OCM sync resuming", extra={"mode": mode, "runId": run["runId"], "cursor": run["cursor"],
                                                "feed": feed.key})
        return run
    since = None
    if mode == INCREMENTAL and state.get("lastSuccessAt"):
        since = state["lastSuccessAt"] - options.overlap
    elif mode == INCREMENTAL and deps.progress:
        deps.progress(f"no checkpoint for {feed.url} (countries: {','.join(feed.countries) or 'all'}): "
                      "reading every record")
    run = {"runId": str(uuid.uuid4()), "startedAt": now, "modifiedSince": since, "cursor": 0, "pages": 0}
    deps.repo.save_run(mode, feed, run)
    return run


def _page_fits(deadline: Deadline, slowest_page: float, options: SyncOptions) -> bool:
    left = deadline.seconds_left()
    return left is None or left > max(options.min_margin_seconds, 2 * slowest_page)


def run_sync(deps: SyncDeps, options: SyncOptions, deadline: Deadline | None = None,
             correlation_id: str | None = None) -> dict[str, Any]:
    """One invocation of the worker; returns (and publishes) the OCM_SYNC_COMPLETED payload."""
    deadline = deadline or Deadline()
    mode = FULL if options.full else INCREMENTAL
    started_at = deps.clock()
    run = _start_run(deps, mode, options, started_at)
    totals = SyncTotals()
    # One store thread: page k is written while page k+1 is fetched and mapped. Leaving the
    # block waits for the page in flight, so its checkpoint is saved even when the API fails.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ocm-store") as store:
        run, complete = _pages(deps, mode, options, deadline, run, totals, store)
    if complete:
        _finish(deps, mode, run, totals, options)
    return _report(deps, mode, run, totals, started_at, complete, correlation_id)


@dataclass(frozen=True)
class _Page:
    """A fetched, mapped page on its way to the store, with the run to checkpoint once it is stored."""

    after_id: int
    records: list[Any]
    pois: list[MappedPoi]
    run: dict[str, Any]
    final: bool


def _pages(deps: SyncDeps, mode: str, options: SyncOptions, deadline: Deadline, run: dict[str, Any],
           totals: SyncTotals, store: ThreadPoolExecutor) -> tuple[dict[str, Any], bool]:
    """Page through the feed until it ends or a limit says stop; returns the last stored run."""
    cursor, slowest, complete = run["cursor"], 0.0, False
    in_flight: Future[tuple[PageOutcome, _Page]] | None = None
    while not complete:
        if options.max_pages is not None and totals.pages >= options.max_pages:
            break
        if not _page_fits(deadline, slowest, options):
            logger.info("OCM sync stopping before the time limit", extra={"mode": mode, "cursor": cursor})
            break
        began = time.monotonic()
        records = deps.source.fetch_page(after_id=cursor, page_size=options.page_size,
                                         modified_since=run.get("modifiedSince"))
        pois = map_page(records, totals)
        totals.processed += len(records)
        totals.pages += 1
        next_cursor = _page_cursor(records, cursor)
        complete = len(records) < options.page_size
        page = _Page(cursor, records, pois, {**run, "cursor": next_cursor, "pages": run["pages"] + totals.pages},
                     final=complete)
        if in_flight is not None:
            _settle(deps, in_flight, totals)
        in_flight = store.submit(_store_page, deps, mode, page)
        slowest = max(slowest, time.monotonic() - began)
        if records and next_cursor == cursor:  # no readable id moved us on: stop rather than loop
            logger.error("OCM page without a usable id; stopping", extra={"mode": mode, "cursor": cursor})
            complete = False
            break
        cursor = next_cursor
    return (_settle(deps, in_flight, totals) if in_flight is not None else run), complete


def _store_page(deps: SyncDeps, mode: str, page: _Page) -> tuple[PageOutcome, _Page]:
    """On the store thread: the page's writes, then (only then) its checkpoint."""
    outcome = deps.repo.apply_page(page.pois, deps.clock())
    if mode == FULL:
        deps.repo.record_seen(page.run["runId"], page.after_id, _ids(page.records))
    if not page.final:  # the last page's checkpoint is the finished run, saved by _finish
        deps.repo.save_run(mode, deps.source.identity, page.run)
    return outcome, page


def _settle(deps: SyncDeps, in_flight: Future[tuple[PageOutcome, _Page]], totals: SyncTotals) -> dict[str, Any]:
    """Wait for a stored page (its failure is raised here), count it, report it; the run it checkpointed."""
    outcome, page = in_flight.result()
    totals.inserted += outcome.inserted
    totals.updated += outcome.updated
    totals.round_trips += outcome.round_trips
    totals.failed += outcome.failed  # refused by the store: skipped, the page still checkpointed
    totals.failed_ids += outcome.failed_ids[:max(0, 100 - len(totals.failed_ids))]
    if deps.progress:
        deps.progress(f"page {page.run['pages']}: {len(page.records)} records up to id {page.run['cursor']} "
                      f"(+{outcome.inserted} new, {outcome.updated} changed, {outcome.unchanged} unchanged)")
    return page.run


def _finish(deps: SyncDeps, mode: str, run: dict[str, Any], totals: SyncTotals, options: SyncOptions) -> None:
    if mode == FULL:
        outcome = deps.repo.mark_unseen_removed(run["runId"], run["startedAt"], deps.clock(),
                                                options.countries, max_share=options.max_removal_share)
        totals.removed, totals.removal_held = outcome.removed, outcome.held
        if outcome.held:
            _report_held_removal(deps, run, outcome, options)
    deps.repo.save_run(mode, deps.source.identity, None, last_success_at=run["startedAt"])


def _report_held_removal(deps: SyncDeps, run: dict[str, Any], outcome: RemovalOutcome,
                         options: SyncOptions) -> None:
    """The guard refused: say so loudly (log + ``OcmSweepRemovalHeld`` metric), remove nothing."""
    from chalicelib.observability.metrics import MetricUnit, metrics

    logger.error("OCM full sweep saw too few stations; removal held", extra={
        "runId": run["runId"], "unseen": outcome.held, "liveCandidates": outcome.candidates,
        "seenIds": outcome.seen, "maxRemovalShare": options.max_removal_share})
    metrics.add_metric(name="OcmSweepRemovalHeld", unit=MetricUnit.Count, value=outcome.held)
    if deps.progress:
        deps.progress(f"removal held: {outcome.held} of {outcome.candidates} live stations unseen "
                      f"(more than {options.max_removal_share:.0%}); nothing removed")


def _report(deps: SyncDeps, mode: str, run: dict[str, Any], totals: SyncTotals, started_at: dt.datetime,
            complete: bool, correlation_id: str | None) -> dict[str, Any]:
    finished_at = deps.clock()
    payload = {
        "eventType": OCM_SYNC_COMPLETED,  # first, as in the seed: the CLI line reads like the bus event
        "source": SOURCE,
        "startedAt": iso_utc(started_at.replace(microsecond=0)),
        "finishedAt": iso_utc(finished_at.replace(microsecond=0)),
        "processed": totals.processed,
        "updated": totals.updated,
        "failed": totals.failed,
        "inserted": totals.inserted,
        "removed": totals.removed,
        "mode": mode,
        "complete": complete,
    }
    logger.info("OCM sync finished", extra={**payload, "runId": run["runId"], "pages": totals.pages,
                                            "roundTrips": totals.round_trips, "failedIds": totals.failed_ids,
                                            "removalHeld": totals.removal_held})
    if deps.publisher is not None:
        event_id = derived_event_id(OCM_SYNC_COMPLETED, f"{run['runId']}:{run['pages']}:{iso_utc(started_at)}")
        deps.publisher.publish([OutgoingEvent(OCM_SYNC_COMPLETED, payload, event_id=event_id,
                                              occurred_at=finished_at)], correlation_id=correlation_id)
    return payload
