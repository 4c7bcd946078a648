"""Document numbers (``INV-2026-000042``, ``CN-2026-000003``): unique and ordered per year.

A batch takes one block of numbers from the year's counter in one atomic ``$inc``.
Inside the block the numbers follow the sorted keys, so two attempts at the same set
of keys give each key the same number. A retry right after a crash reuses the block
(see ``BillingRepository.take_numbers``); otherwise a crash or a duplicate delivery
leaves a gap, never a duplicate (the unique index on ``invoices.number`` backs that).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from chalicelib.billing.repository import BillingRepository


def reserve_numbers(repo: BillingRepository, prefix: str, year: int, keys: Iterable[str]) -> dict[str, str]:
    """One number of ``<prefix>-<year>`` for each key, in one store round trip."""
    ordered = sorted(set(keys))
    if not ordered:
        return {}
    series = f"{prefix}-{year}"
    block_key = hashlib.sha256("\n".join(ordered).encode()).hexdigest()[:32]
    last = repo.take_numbers(series, block_key, len(ordered))
    first = last - len(ordered) + 1
    return {key: f"{series}-{first + offset:06d}" for offset, key in enumerate(ordered)}
