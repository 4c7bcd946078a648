"""Our own store errors, so ``pymongo.errors`` never escape the data layer.

The SQS batch handler and the DLQ reconciler decide "retry" or "dead-letter"
from these two classes alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pymongo import errors as mongo_errors


class StoreError(Exception):
    """Base of every store failure."""


class TransientStoreError(StoreError):
    """The store was unreachable or busy: retrying later can succeed."""


class PermanentStoreError(StoreError):
    """The request itself is wrong (bad document, bad query): retrying will not help."""


_TRANSIENT = (
    mongo_errors.AutoReconnect,
    mongo_errors.ConnectionFailure,
    mongo_errors.NetworkTimeout,
    mongo_errors.ServerSelectionTimeoutError,
    mongo_errors.ExecutionTimeout,
    mongo_errors.WTimeoutError,
)


@contextmanager
def translate_errors(operation: str) -> Iterator[None]:
    """Map driver errors raised inside the block to Transient/PermanentStoreError.

    ``DuplicateKeyError`` is left alone: callers use it to detect "already done".
    """
    try:
        yield
    except mongo_errors.DuplicateKeyError:
        raise
    except _TRANSIENT as exc:
        raise TransientStoreError(f"{operation}: store unavailable ({type(exc).__name__})") from exc
    except mongo_errors.BulkWriteError:
        raise
    except mongo_errors.PyMongoError as exc:
        if getattr(exc, "has_error_label", None) and exc.has_error_label("RetryableWriteError"):
            raise TransientStoreError(f"{operation}: retryable write error") from exc
        raise PermanentStoreError(f"{operation}: {type(exc).__name__}") from exc
