"""Composition root: the one place that picks concrete adapters.

Handlers call these getters; logic receives what they return as arguments.
Everything is built lazily on first use and cached per process (Lambda warm
starts reuse it); nothing here runs at import time.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any

from chalicelib.config import Settings, get_settings

_lock = threading.Lock()


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


Clock = Callable[[], dt.datetime]


def settings() -> Settings:
    return get_settings()


@cache
def aws_client(service: str) -> Any:
    """A boto3 client; ``AWS_ENDPOINT_URL`` (moto locally) applies when set."""
    import boto3
    from botocore.config import Config

    s = get_settings()
    with _lock:
        return boto3.client(
            service,
            region_name=s.aws_region,
            endpoint_url=s.aws_endpoint_url or None,
            config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30),
        )


def database():
    from chalicelib.store import get_database

    return get_database(get_settings())


_indexed: set[tuple[str, str, str]] = set()


def indexed_database(specs: list, owner: str):
    """The database, with ``specs`` ensured once per process (cold start), not per invocation.

    ``python -m chalicelib indexes`` creates every index at deploy; this is the
    safety net for a fresh database, since a missing unique index would turn
    "exactly one" into "probably one".
    """
    from chalicelib.store import ensure_indexes

    s = get_settings()
    db = database()
    key = (s.mongodb_uri, s.mongodb_db, owner)
    if key not in _indexed:
        with _lock:
            if key not in _indexed:
                ensure_indexes(db, specs)
                _indexed.add(key)
    return db


def publisher():
    """One publisher per bus per process; it keeps its boto3 client warm across invocations."""
    return _publisher_for(get_settings().event_bus_name)


@lru_cache(maxsize=4)
def _publisher_for(bus_name: str):
    from chalicelib.events import EventBridgePublisher

    return EventBridgePublisher(client=aws_client("events"), bus_name=bus_name, clock=utc_now)


def all_index_specs() -> list:
    """Every domain's index declarations, for ``ensure_indexes`` at deploy/start."""
    from chalicelib.auth import repository as auth
    from chalicelib.billing import repository as billing
    from chalicelib.dlq import repository as dlq
    from chalicelib.ocm import repository as ocm

    return [*auth.INDEXES, *billing.INDEXES, *ocm.INDEXES, *dlq.INDEXES]


def reset() -> None:
    """Drop cached clients and settings (tests, local stack restarts)."""
    from chalicelib.config import reset_settings_cache
    from chalicelib.store import reset_clients

    aws_client.cache_clear()
    _publisher_for.cache_clear()
    _indexed.clear()
    reset_settings_cache()
    reset_clients()
