"""Unordered bulk writes cut into batches the embedded store can take.

FerretDB v1.24 keeps one SQLite connection open per update of a batch until
the batch ends and has 100 of them, so a batch of 100 updates deadlocks. We
cut update batches at ``max_ops`` (setting ``MONGODB_MAX_BATCH_OPS``; raise it
on MongoDB). Inserts are not affected and go in one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

from chalicelib.store.errors import translate_errors


@dataclass
class BulkOutcome:
    inserted: int = 0
    matched: int = 0
    modified: int = 0
    upserted: int = 0
    round_trips: int = 0
    duplicate_keys: int = 0


def bulk_write_chunked(collection: Collection, operations: Sequence, max_ops: int) -> BulkOutcome:
    """Run ``operations`` unordered in chunks; duplicate-key errors are counted, not raised."""
    outcome = BulkOutcome()
    for start in range(0, len(operations), max_ops):
        chunk = operations[start : start + max_ops]
        outcome.round_trips += 1
        try:
            with translate_errors(f"bulk write to {collection.name}"):
                result = collection.bulk_write(list(chunk), ordered=False)
            details = result.bulk_api_result
        except BulkWriteError as exc:
            details = exc.details
            other = [e for e in details.get("writeErrors", []) if e.get("code") != 11000]
            if other:
                raise
            outcome.duplicate_keys += len(details.get("writeErrors", []))
        outcome.inserted += details.get("nInserted", 0)
        outcome.matched += details.get("nMatched", 0)
        outcome.modified += details.get("nModified", 0)
        outcome.upserted += details.get("nUpserted", 0)
    return outcome
