"""Datetimes made timezone-aware in UTC, for values read back from the store or from ISO text.

BSON keeps an instant without its zone, so a client opened without ``tz_aware`` hands
back naive datetimes, and ISO text from other services may omit its offset; both mean
UTC here. Comparing a naive value with an aware clock raises ``TypeError``, so every
reader that compares stored or parsed times with the clock goes through one of these
two functions instead of repeating ``value if value.tzinfo else value.replace(...)``.

Standard library only: the authorizer and the resolvers import this without cost.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


def aware_utc(value: Any) -> dt.datetime | None:
    """``value`` when it is a datetime (a naive one read as UTC), else ``None``.

    ``None`` for anything else, because a missing or malformed stored field must not
    pass as a time: the callers treat it as "never" or "unknown".
    """
    if not isinstance(value, dt.datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def parse_utc(text: Any) -> dt.datetime | None:
    """ISO-8601 text (a trailing ``Z`` accepted, no offset read as UTC); ``None`` when it is not one.

    Callers decide what an unreadable time means (skip it, or report the field), so this
    never raises. Surrounding blanks are not trimmed: a boundary that accepts them says so.
    """
    if not isinstance(text, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return aware_utc(parsed)
