"""Is a resource already as the deploy step wants it? One answer for every ``ensure_*``.

AWS echoes back more than it was given (defaults, ARNs, timestamps), so "unchanged"
means: every field we set has the value we set, whatever else is there.
"""

from __future__ import annotations

from typing import Any


def same(current: Any, desired: Any) -> bool:
    """``desired`` is contained in ``current``: dicts by key (extra keys allowed), lists item by item."""
    if isinstance(desired, dict):
        return isinstance(current, dict) and all(same(current.get(k), v) for k, v in desired.items())
    if isinstance(desired, list):
        return (isinstance(current, list) and len(current) == len(desired)
                and all(same(c, d) for c, d in zip(current, desired, strict=True)))
    return current == desired
