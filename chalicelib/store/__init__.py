"""MongoDB access: one client per process, our own error types, idempotent indexes."""

from chalicelib.store.client import get_database, reset_clients
from chalicelib.store.errors import PermanentStoreError, StoreError, TransientStoreError, translate_errors
from chalicelib.store.indexes import IndexSpec, ensure_indexes

__all__ = [
    "IndexSpec",
    "PermanentStoreError",
    "StoreError",
    "TransientStoreError",
    "ensure_indexes",
    "get_database",
    "reset_clients",
    "translate_errors",
]
