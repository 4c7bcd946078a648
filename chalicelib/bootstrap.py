"""Composition root: the one place that picks concrete adapters.

Handlers call these getters; logic receives what they return as arguments.
Everything is built lazily on first use and cached per process (Lambda warm
starts reuse it); nothing here runs at import time.

Settings come in sections (``chalicelib.config``): ``settings(BillingSettings)`` loads and
validates that section alone, once per process, so each Lambda checks exactly the
variables it uses. The getters below ask for the sections their adapters need
(``CoreSettings`` for AWS clients and the bus, ``StoreSettings`` for the database).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any

from chalicelib.config import CoreSettings, SectionT, get_section

_lock = threading.Lock()


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


Clock = Callable[[], dt.datetime]


def settings(section: type[SectionT]) -> SectionT:
    """The section ``section`` for this process: validated on first use, then kept."""
    return get_section(section)


@cache
def aws_client(service: str) -> Any:
    """A boto3 client; ``AWS_ENDPOINT_URL`` (moto locally) applies when set."""
    import boto3
    from botocore.config import Config

    s = get_section(CoreSettings)
    with _lock:
        return boto3.client(
            service,
            region_name=s.aws_region,
            endpoint_url=s.aws_endpoint_url or None,
            config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30),
        )


@cache
def secret_string(secret_id: str) -> str:
    """A Secrets Manager secret's value, fetched once per process (warm starts reuse it), never logged.

    Only this module talks to Secrets Manager: the store and OCM clients receive the
    resolved value, so no logic needs AWS credentials or a client to be tested.
    """
    return aws_client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]


def resolved_secret(plain: str, secret_id: str) -> str:
    """A plain value (local use, tests) wins over a secret id, as ``JWT_PRIVATE_KEY`` does; "" when neither is set.

    Deployed stages set only the id (``.chalice/config.json``), so the value never sits in
    the function's environment, where ``lambda:GetFunctionConfiguration`` would show it.
    """
    if plain:
        return plain
    return secret_string(secret_id).strip() if secret_id else ""


def mongodb_uri() -> str:
    """``MONGODB_URI``, or the value of ``MONGODB_URI_SECRET_ID``; "" means the embedded default."""
    from chalicelib.store.settings import StoreSettings

    s = get_section(StoreSettings)
    return resolved_secret(s.mongodb_uri, s.mongodb_uri_secret_id)


def database():
    from chalicelib.store import get_database
    from chalicelib.store.settings import StoreSettings

    core = get_section(CoreSettings)
    return get_database(get_section(StoreSettings), uri=mongodb_uri(), appname=core.prefix)


_indexed: set[tuple[str, str, str]] = set()


def indexed_database(specs: list, owner: str):
    """The database, with ``specs`` ensured once per process (cold start), not per invocation.

    ``python -m chalicelib indexes`` creates every index at deploy; this is the
    safety net for a fresh database, since a missing unique index would turn
    "exactly one" into "probably one".
    """
    from chalicelib.store import ensure_indexes
    from chalicelib.store.settings import StoreSettings

    db = database()
    key = (mongodb_uri(), get_section(StoreSettings).mongodb_db, owner)
    if key not in _indexed:
        with _lock:
            if key not in _indexed:
                ensure_indexes(db, specs)
                _indexed.add(key)
    return db


def publisher():
    """One publisher per bus per process; it keeps its boto3 client warm across invocations."""
    return _publisher_for(get_section(CoreSettings).event_bus_name)


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
    secret_string.cache_clear()
    _publisher_for.cache_clear()
    _indexed.clear()
    reset_settings_cache()
    reset_clients()
