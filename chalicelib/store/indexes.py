"""Index declarations and their idempotent creation.

Each domain declares its ``IndexSpec`` list next to its repository; the
composition root (``chalicelib.bootstrap``) passes them all here at deploy or
start-up, never on every invocation. ``create_index`` with the same keys and
options is a no-op on MongoDB and the embedded server alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pymongo.database import Database

from chalicelib.store.errors import translate_errors


@dataclass(frozen=True)
class IndexSpec:
    collection: str
    keys: tuple[tuple[str, int], ...]
    unique: bool = False
    name: str | None = None
    options: dict = field(default_factory=dict)


def ensure_indexes(db: Database, specs: Iterable[IndexSpec]) -> list[str]:
    """Create every index (idempotent); return the names, for start-up output.

    TTL indexes (``expireAfterSeconds``) are housekeeping: the code never relies on
    a document being gone, only on what its own filters say (an expired token is
    refused by its ``expiresAt``, whether or not the server has removed it yet).
    """
    names = []
    for spec in specs:
        with translate_errors(f"create index on {spec.collection}"):
            name = db[spec.collection].create_index(list(spec.keys), unique=spec.unique, name=spec.name,
                                                    **spec.options)
        names.append(f"{spec.collection}.{name}")
    return names
