"""One ``MongoClient`` per process, built lazily on first use.

Lambda keeps the process warm between invocations, so the connection pool is
reused; importing this module touches nothing. Writes are acknowledged by a majority
(``w="majority"``, unless the URI says otherwise): a write acknowledged by a primary
alone can be rolled back at a failover, after its events went out, and then a
redelivery could reuse an invoice number that was already published.
"""

from __future__ import annotations

import threading

from pymongo import MongoClient
from pymongo.database import Database

from chalicelib.config import Settings

_lock = threading.Lock()
_clients: dict[str, MongoClient] = {}

EMBEDDED_DEFAULT_URI = "mongodb://127.0.0.1:27017/"


def _uri(settings: Settings) -> str:
    return settings.mongodb_uri or EMBEDDED_DEFAULT_URI


def get_client(settings: Settings) -> MongoClient:
    uri = _uri(settings)
    with _lock:
        client = _clients.get(uri)
        if client is None:
            client = MongoClient(
                uri,
                serverSelectionTimeoutMS=settings.mongodb_timeout_ms,
                connectTimeoutMS=settings.mongodb_timeout_ms,
                socketTimeoutMS=max(settings.mongodb_timeout_ms * 6, 30000),
                tz_aware=True,
                appname=f"{settings.app_name}-{settings.stage}",
                **({} if "w=" in uri else {"w": "majority"}),
            )
            _clients[uri] = client
        return client


def get_database(settings: Settings) -> Database:
    return get_client(settings)[settings.mongodb_db]


def reset_clients() -> None:
    """Close every cached client (tests and the local stack's restarts)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
