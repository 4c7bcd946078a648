"""Index declarations and their idempotent creation.

Each domain declares its ``IndexSpec`` list next to its repository; the
composition root (``chalicelib.bootstrap``) passes them all here at deploy or
start-up, never on every invocation. ``create_index`` with the same keys and
options is a no-op on MongoDB and FerretDB alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pymongo.database import Database
from pymongo.errors import OperationFailure

from chalicelib.store.errors import translate_errors

NOT_IMPLEMENTED = 238  # server error code


@dataclass(frozen=True)
class IndexSpec:
    collection: str
    keys: tuple[tuple[str, int], ...]
    unique: bool = False
    name: str | None = None
    options: dict = field(default_factory=dict)


def ensure_indexes(db: Database, specs: Iterable[IndexSpec]) -> list[str]:
    """Create every index (idempotent); return the names, for start-up output.

    A TTL index (``expireAfterSeconds``) the server refuses as not implemented
    (FerretDB 1.24) is skipped and reported as such: expiry is housekeeping, and
    the code never relies on a document being gone. MongoDB creates it.
    """
    names = []
    for spec in specs:
        with translate_errors(f"create index on {spec.collection}"):
            try:
                name = db[spec.collection].create_index(
                    list(spec.keys), unique=spec.unique, name=spec.name, **spec.options
                )
            except OperationFailure as exc:
                if exc.code != NOT_IMPLEMENTED or "expireAfterSeconds" not in spec.options:
                    raise
                names.append(f"{spec.collection}.{spec.name} (skipped: this server has no TTL indexes)")
                continue
        names.append(f"{spec.collection}.{name}")
    return names
