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


# Server error codes that mean "busy, interrupted or failing over": the same request can succeed later.
TRANSIENT_CODES = frozenset({
    6,      # HostUnreachable
    7,      # HostNotFound
    50,     # MaxTimeMSExpired
    89,     # NetworkTimeout
    91,     # ShutdownInProgress
    112,    # WriteConflict
    189,    # PrimarySteppedDown
    262,    # ExceededTimeLimit
    9001,   # SocketException
    10107,  # NotWritablePrimary
    11600,  # InterruptedAtShutdown
    11602,  # InterruptedDueToReplStateChange
    13435,  # NotPrimaryNoSecondaryOk
    13436,  # NotPrimaryOrSecondary
})
TRANSIENT_LABELS = ("TransientTransactionError", "RetryableWriteError")


def is_transient(exc: BaseException) -> bool:
    """Whether a driver error says "try again later" (by code or error label, never by message text)."""
    if isinstance(exc, _TRANSIENT):
        return True
    if not isinstance(exc, mongo_errors.PyMongoError):
        return False
    has_label = getattr(exc, "has_error_label", None)
    if has_label and any(has_label(label) for label in TRANSIENT_LABELS):
        return True
    return isinstance(exc, mongo_errors.OperationFailure) and exc.code in TRANSIENT_CODES


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
        if is_transient(exc):
            code = getattr(exc, "code", None)
            raise TransientStoreError(f"{operation}: store busy ({type(exc).__name__}, code {code})") from exc
        raise PermanentStoreError(f"{operation}: {type(exc).__name__}") from exc
