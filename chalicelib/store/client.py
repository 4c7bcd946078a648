"""One ``MongoClient`` per process, built lazily on first use.

Lambda keeps the process warm between invocations, so the connection pool is
reused; importing this module touches nothing. Writes are acknowledged by a majority
(``w="majority"``, unless the URI says otherwise): a write acknowledged by a primary
alone can be rolled back at a failover, after its events went out, and then a
redelivery could reuse an invoice number that was already published.

The URI comes from ``MONGODB_URI`` locally; deployed functions get it from the
Secrets Manager secret ``MONGODB_URI_SECRET_ID`` names, which the composition root
(``bootstrap.database``) resolves and passes in: this module never calls AWS.
"""

from __future__ import annotations

import threading

from pymongo import MongoClient
from pymongo.database import Database

from chalicelib.config import ConfigError
from chalicelib.store.settings import StoreSettings

_lock = threading.Lock()
_clients: dict[str, MongoClient] = {}

EMBEDDED_DEFAULT_URI = "mongodb://127.0.0.1:27017/"


def _uri(settings: StoreSettings, uri: str | None) -> str:
    if uri or settings.mongodb_uri:
        return uri or settings.mongodb_uri
    if settings.mongodb_uri_secret_id:
        # Falling back to the embedded default here would point a deployed function at 127.0.0.1.
        raise ConfigError("MONGODB_URI_SECRET_ID is set: pass the URI resolved from it (bootstrap.database)")
    return EMBEDDED_DEFAULT_URI


def get_client(settings: StoreSettings, uri: str | None = None, appname: str = "jucr") -> MongoClient:
    """The process's client for ``uri`` (the composition root resolves it) or ``MONGODB_URI``.

    ``appname`` (``<app>-<stage>``) shows in the server's logs and ``currentOp``, which connection is whose.
    """
    uri = _uri(settings, uri)
    with _lock:
        client = _clients.get(uri)
        if client is None:
            client = MongoClient(
                uri,
                serverSelectionTimeoutMS=settings.mongodb_timeout_ms,
                connectTimeoutMS=settings.mongodb_timeout_ms,
                socketTimeoutMS=max(settings.mongodb_timeout_ms * 6, 30000),
                tz_aware=True,
                appname=appname,
                **({} if "w=" in uri else {"w": "majority"}),
            )
            _clients[uri] = client
        return client


def get_database(settings: StoreSettings, uri: str | None = None, appname: str = "jucr") -> Database:
    return get_client(settings, uri, appname)[settings.mongodb_db]


def reset_clients() -> None:
    """Close every cached client (tests and the local stack's restarts)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
