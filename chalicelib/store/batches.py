"""One unordered bulk write whose outcome is counted the same on every server.

The driver splits a large bulk into server batches itself (MongoDB takes up to
100,000 operations a batch), so callers hand over a whole page at once. When some
operations fail, the counts come from the write errors, not from the server's
``nInserted``: mongo-java-server counts a failed insert as inserted, MongoDB does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import InsertOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

from chalicelib.store.errors import TRANSIENT_CODES, PermanentStoreError, TransientStoreError, translate_errors

DUPLICATE_KEY = 11000


@dataclass
class BulkOutcome:
    inserted: int = 0
    matched: int = 0
    modified: int = 0
    upserted: int = 0
    round_trips: int = 0
    duplicate_keys: int = 0
    # Position -> error code of operations the server refused for another reason than a
    # duplicate key (too large, a shape it will not store): the rest of the write has landed.
    refused: dict[int, Any] = field(default_factory=dict)


def bulk_write(collection: Collection, operations: Sequence) -> BulkOutcome:
    """Run ``operations`` unordered in one call; refused operations are counted, not raised.

    Duplicate keys are counted in ``duplicate_keys``, other refusals listed in ``refused``
    (the caller decides what a refused operation means); busy or interrupted codes raise
    ``TransientStoreError``, so the whole write is retried.
    """
    outcome = BulkOutcome()
    if not operations:
        return outcome
    outcome.round_trips = 1
    try:
        with translate_errors(f"bulk write to {collection.name}"):
            details = collection.bulk_write(list(operations), ordered=False).bulk_api_result
        errors: list[dict[str, Any]] = []
    except BulkWriteError as exc:
        details = exc.details
        duplicates, outcome.refused = _refusals(exc, f"bulk write to {collection.name}")
        outcome.duplicate_keys = len(duplicates)
        errors = details.get("writeErrors", [])
    failed_inserts = sum(1 for error in errors if isinstance(operations[error["index"]], InsertOne))
    inserts = sum(1 for operation in operations if isinstance(operation, InsertOne))
    outcome.inserted = inserts - failed_inserts
    outcome.matched = details.get("nMatched", 0)
    outcome.modified = details.get("nModified", 0)
    outcome.upserted = details.get("nUpserted", 0)
    return outcome


def write_unordered(collection: Collection, operations: Sequence[Any], operation: str,
                    inserts: bool = False) -> tuple[dict[str, Any], list[int]]:
    """One unordered call (``insert_many`` of documents, or ``bulk_write``).

    Returns the server's counts and the positions refused as duplicate keys, which
    callers read as "another writer got there first". Any other write error is ours:
    busy or interrupted codes are transient, the rest permanent.
    """
    try:
        with translate_errors(operation):
            if inserts:
                collection.insert_many(list(operations), ordered=False)
                return {}, []
            return collection.bulk_write(list(operations), ordered=False).bulk_api_result, []
    except BulkWriteError as exc:
        duplicates, refused = _refusals(exc, operation)
        if refused:
            codes = {error.get("code") for error in exc.details.get("writeErrors", [])}
            raise PermanentStoreError(f"{operation}: write errors {sorted(codes, key=str)}") from exc
        return exc.details, duplicates


def _refusals(exc: BulkWriteError, operation: str) -> tuple[list[int], dict[int, Any]]:
    """Split a bulk's write errors into duplicate-key positions and the others (with their codes).

    Busy or interrupted codes raise ``TransientStoreError``: the whole write is retried.
    """
    errors = exc.details.get("writeErrors", [])
    codes = {error.get("code") for error in errors}
    if codes & TRANSIENT_CODES:
        raise TransientStoreError(f"{operation}: store busy (codes {sorted(codes, key=str)})") from exc
    duplicates = [error["index"] for error in errors if error.get("code") == DUPLICATE_KEY]
    return duplicates, {error["index"]: error.get("code") for error in errors if error.get("code") != DUPLICATE_KEY}
