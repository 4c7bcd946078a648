"""Lambda glue for the OCM mirror: the scheduled sync and the stations resolver (fields in ``graphql.py``).

The only module of the domain that touches ``bootstrap``: it builds the client,
repository and publisher from settings and hands them to the logic.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from chalicelib import bootstrap
from chalicelib.ocm.settings import OcmSettings

if TYPE_CHECKING:  # imported lazily at run time: each Lambda loads only what it calls
    from chalicelib.ocm.client import OcmClient
    from chalicelib.ocm.repository import MirrorRepository
    from chalicelib.ocm.sync import SyncOptions


def repository() -> MirrorRepository:
    """The mirror repository, with its indexes ensured once per process (the unique ocm_id matters)."""
    from chalicelib.ocm.repository import INDEXES, MirrorRepository

    db = bootstrap.indexed_database(INDEXES, "ocm")
    return MirrorRepository(db)


def client(settings: OcmSettings) -> OcmClient:
    from chalicelib.ocm.client import ClientConfig, OcmClient, countries_from_setting

    return OcmClient(ClientConfig(
        base_url=settings.ocm_api_url,
        api_key=bootstrap.resolved_secret(settings.ocm_api_key, settings.ocm_api_key_secret_id),
        timeout_seconds=settings.ocm_timeout_seconds,
        retries=settings.ocm_retries,
        countries=tuple(countries_from_setting(settings.ocm_countries)),
    ))


def sync_options(settings: OcmSettings, full: bool, max_pages: int | None = None) -> SyncOptions:
    from chalicelib.ocm.client import countries_from_setting
    from chalicelib.ocm.sync import SyncOptions

    return SyncOptions(full=full, page_size=settings.ocm_page_size,
                       overlap=dt.timedelta(minutes=settings.ocm_overlap_minutes),
                       countries=tuple(countries_from_setting(settings.ocm_countries)), max_pages=max_pages)


def scheduled_sync(full: bool, context: Any) -> dict[str, Any]:
    """Schedule tick: sync until done or until the Lambda's time runs short; publish the result."""
    from chalicelib.ocm.sync import Deadline, SyncDeps, run_sync

    settings = bootstrap.settings(OcmSettings)
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    deadline = Deadline(remaining_ms=remaining, budget_seconds=settings.ocm_time_budget_seconds)
    source = client(settings)
    try:
        deps = SyncDeps(source=source, repo=repository(), publisher=bootstrap.publisher(), clock=bootstrap.utc_now)
        result = run_sync(deps, sync_options(settings, full), deadline,
                          correlation_id=getattr(context, "aws_request_id", None))
    finally:
        source.close()
    _record_metrics(result)
    return result


def _record_metrics(result: dict[str, Any]) -> None:
    """``OcmSyncCompleted`` feeds the 'sync stalled' alarm (appsync/alarms.py): emitted only for a finished run.

    Flushed with the rest of the invocation's metrics by the handler's wrapper (``observability/handler.py``).
    """
    from chalicelib.observability.metrics import MetricUnit, metrics

    if result.get("complete", True):
        metrics.add_metric(name="OcmSyncCompleted", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="OcmRecordsFailed", unit=MetricUnit.Count, value=int(result.get("failed", 0)))


def resolve(event: dict[str, Any], context: Any) -> Any:
    """``stationsNear`` and ``station`` (``chalicelib/ocm/graphql.py``); bad arguments raise ``ValidationError``."""
    from chalicelib.ocm.graphql import router
    from chalicelib.resolvers import serve

    return serve(router, event, context, repository)
