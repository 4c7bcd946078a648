"""OpenChargeMap reference data (ID -> title), shipped with the code.

The sync asks OCM for the compact form (related objects as IDs only: about
half the bytes of the verbose form), so titles for operators, statuses,
connection types, data providers (with their licence) and country codes come
from this table, trimmed from ``/v3/referencedata`` (CC BY-SA 4.0). An ID the
table does not know maps to ``None`` rather than failing the record; a verbose
record's inline objects win over the table.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_PATH = Path(__file__).with_name("referencedata.json")


@cache
def reference() -> dict[str, dict[str, Any]]:
    return json.loads(_PATH.read_text())


def lookup(table: str, key: Any) -> Any:
    if key is None:
        return None
    return reference()[table].get(str(key))


def country_code(country_id: Any) -> str | None:
    return lookup("Countries", country_id)
