"""Validate one OCM record and map it to a mirror document, with a content hash.

The hash covers the whole raw record except the fields OCM computes from the
clock at read time (``IsRecentlyVerified``, ``DateLastVerified``): hashing them
would rewrite every POI on every run for nothing. ``MAPPING_VERSION`` is part of
the hash, so changing the mapping rewrites each record once on the next sync.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from chalicelib.ocm import validation
from chalicelib.ocm.reference import country_code, lookup

MAPPING_VERSION = 1
TIME_ONLY_FIELDS = frozenset({"IsRecentlyVerified", "DateLastVerified"})


class RecordInvalid(ValueError):
    """A record failed validation; ``ocm_id`` is what we could read of its id (may be None)."""

    def __init__(self, ocm_id: Any, problems: dict[str, str]) -> None:
        super().__init__(f"OCM record {ocm_id!r} is invalid: {problems}")
        self.ocm_id = ocm_id if isinstance(ocm_id, int) and not isinstance(ocm_id, bool) else None
        self.problems = problems


@dataclass(frozen=True)
class MappedPoi:
    ocm_id: int
    hash: str
    body: dict[str, Any]  # every stored field except _id, removal and sweep bookkeeping


def content_hash(record: dict[str, Any]) -> str:
    kept = {k: v for k, v in record.items() if k not in TIME_ONLY_FIELDS}
    canonical = json.dumps([MAPPING_VERSION, kept], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _clean(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def _title(inline: dict | None, table: str, key: Any) -> str | None:
    if inline and _clean(inline.get("Title")):
        return _clean(inline.get("Title"))
    return lookup(table, key)


def _connection(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "typeId": c["ConnectionTypeID"],
        "type": _title(c["ConnectionType"], "ConnectionTypes", c["ConnectionTypeID"]),
        "powerKw": c["PowerKW"],
        "quantity": c["Quantity"],
        "statusId": c["StatusTypeID"],
        "levelId": c["LevelID"],
        "currentTypeId": c["CurrentTypeID"],
    }


def _provider(poi: dict[str, Any]) -> dict[str, Any]:
    inline = poi["DataProvider"] or {}
    known = lookup("DataProviders", poi["DataProviderID"]) or {}
    title = _clean(inline.get("Title")) or known.get("title") or "Open Charge Map"
    license_text = _clean(inline.get("License")) or known.get("license")
    return {"id": poi["DataProviderID"], "title": title, "license": license_text}


def _attribution_note(values: list[dict] | None) -> str | None:
    # A POI may carry its own attribution as MetadataFieldID 4; a mirror must keep it.
    for item in values or []:
        if item.get("MetadataFieldID") == 4:
            option = item.get("MetadataFieldOption")
            return _clean(item.get("ItemValue")) or (_clean(option.get("Title")) if isinstance(option, dict) else None)
    return None


def map_record(record: Any) -> MappedPoi:
    """Validate and map; raise :class:`RecordInvalid` naming the problem fields (never their values)."""
    if not isinstance(record, dict):
        raise RecordInvalid(None, {"_schema": "record is not a JSON object"})
    try:
        poi = validation.load(record)
    except validation.Invalid as exc:
        raise RecordInvalid(record.get("ID"), exc.problems) from None
    try:
        body = _body(poi, record)
    except (AttributeError, TypeError, KeyError, ValueError) as exc:
        # Validation let through a shape the mapping did not expect: one bad record, not a failed sync.
        raise RecordInvalid(poi["ID"], {"_schema": f"unexpected shape ({type(exc).__name__})"}) from None
    return MappedPoi(ocm_id=poi["ID"], hash=content_hash(record), body=body)


def _body(poi: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    address = poi["AddressInfo"]
    lat, lon = address["Latitude"], address["Longitude"]
    country = (address["Country"] or {}).get("ISOCode") or country_code(address["CountryID"])
    provider = _provider(poi)
    return {
        "ocm_id": poi["ID"],
        "uuid": poi["UUID"],
        "title": _clean(address["Title"]),
        "position": {"type": "Point", "coordinates": [lon, lat]},
        "lat": lat,
        "lon": lon,
        "address": {
            "line1": _clean(address["AddressLine1"]),
            "line2": _clean(address["AddressLine2"]),
            "town": _clean(address["Town"]),
            "state": _clean(address["StateOrProvince"]),
            "postcode": _clean(address["Postcode"]),
            "countryCode": country,
        },
        "operator": {"id": poi["OperatorID"], "title": _title(poi["OperatorInfo"], "Operators", poi["OperatorID"])},
        "status": {"id": poi["StatusTypeID"], "title": _title(poi["StatusType"], "StatusTypes", poi["StatusTypeID"])},
        "usageTypeId": poi["UsageTypeID"],
        "numberOfPoints": poi["NumberOfPoints"],
        "connections": [_connection(c) for c in poi["Connections"] or []],
        "dataProvider": provider,
        "attribution": {"provider": provider["title"], "license": provider["license"],
                        "note": _attribution_note(poi["MetadataValues"])},
        "dateLastStatusUpdate": poi["DateLastStatusUpdate"],
        "dateCreated": poi["DateCreated"],
        "raw": storable_keys(record),
    }


# Characters a stored key may not hold as sent: "%" first, so the escape itself stays unambiguous.
_KEY_ESCAPES = (("%", "%25"), (".", "%2E"), ("\x00", "%00"))


def _storable_key(key: Any) -> Any:
    if not isinstance(key, str):
        return key
    if "%" in key or "." in key or "\x00" in key:
        for char, escape in _KEY_ESCAPES:
            key = key.replace(char, escape)
    return "%24" + key[1:] if key.startswith("$") else key


def storable_keys(value: Any) -> Any:
    """``value`` with every key MongoDB cannot store escaped, percent-style, at any depth.

    Anyone can edit an OCM record, so its keys are attacker input. A key starting with
    ``$`` reads as an operator, a key holding ``.`` as a path, and a NUL ends a BSON key:
    one such key made the whole page write fail, so the cursor never moved. Escaping
    (``$where`` -> ``%24where``, ``a.b`` -> ``a%2Eb``, ``%`` -> ``%25``) rather than
    dropping keeps the mirror a faithful, reversible copy of what OCM published, and
    keeps the record countable as stored; the content hash is taken from the record as
    sent, so it does not change. Clean records (all of OCM's own keys) come back equal.
    """
    if isinstance(value, dict):
        return {_storable_key(k): storable_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable_keys(v) for v in value]
    return value
