"""Station queries for GraphQL: ``stationsNear`` and ``station``.

Nearby search is a bounding box on the indexed ``lat``/``lon`` numbers refined
by the exact haversine distance: it runs on the embedded server (which has no
``$near``/``$geoWithin``) and on MongoDB alike. The box is widened in longitude by
1/cos(lat), split in two when it crosses the antimeridian, and opened to every
longitude near a pole.
"""

from __future__ import annotations

import math
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate
from marshmallow import ValidationError as MarshmallowError

from chalicelib.contracts.errors import ValidationError
from chalicelib.ocm.repository import MirrorRepository

EARTH_RADIUS_KM = 6371.0088
MAX_RADIUS_KM = 100.0
MAX_FIRST = 100
DEFAULT_FIRST = 20
MAX_BOX_CANDIDATES = 50000
MAX_SHRINKS = 6  # halve the radius at most this often when a box holds too many candidates


class StationsNearArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    lat = fields.Float(required=True, allow_nan=False, validate=validate.Range(-90, 90))
    lon = fields.Float(required=True, allow_nan=False, validate=validate.Range(-180, 180))
    radiusKm = fields.Float(required=True, allow_nan=False,
                            validate=validate.Range(0, MAX_RADIUS_KM, min_inclusive=False))
    first = fields.Integer(strict=True, load_default=DEFAULT_FIRST, allow_none=True,
                           validate=validate.Range(1, MAX_FIRST))


class StationArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    ocmId = fields.Integer(strict=True, required=True, validate=validate.Range(min=1))


def _load(schema: Schema, args: Any) -> dict[str, Any]:
    try:
        return schema.load(args if isinstance(args, dict) else {})
    except MarshmallowError as exc:
        raise ValidationError.from_messages(exc.messages) from None


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def bounding_box(lat: float, lon: float, radius_km: float) -> tuple[float, float, list[tuple[float, float]]]:
    """(south, north, longitude ranges) that contain every point within ``radius_km``."""
    dlat = math.degrees(radius_km / EARTH_RADIUS_KM)
    south, north = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    widest = max(abs(south), abs(north))
    if widest >= 89.9:
        return south, north, [(-180.0, 180.0)]
    dlon = math.degrees(radius_km / (EARTH_RADIUS_KM * math.cos(math.radians(widest))))
    if dlon >= 180:
        return south, north, [(-180.0, 180.0)]
    west, east = lon - dlon, lon + dlon
    if west < -180:
        return south, north, [(west + 360, 180.0), (-180.0, east)]
    if east > 180:
        return south, north, [(west, 180.0), (-180.0, east - 360)]
    return south, north, [(west, east)]


def to_station(doc: dict[str, Any], distance_km: float | None = None) -> dict[str, Any]:
    """The GraphQL ``Station`` shape."""
    address = doc.get("address") or {}
    attribution = doc.get("attribution") or {}
    return {
        "ocmId": doc["ocm_id"],
        "title": doc.get("title"),
        "position": {"lat": doc["lat"], "lon": doc["lon"]},
        "distanceKm": None if distance_km is None else round(distance_km, 3),
        "address": {k: address.get(k) for k in ("line1", "town", "postcode", "countryCode")},
        "operator": (doc.get("operator") or {}).get("title"),
        "status": (doc.get("status") or {}).get("title"),
        "removed": bool(doc.get("removed")),
        "connections": [{"type": c.get("type"), "powerKw": c.get("powerKw"), "quantity": c.get("quantity")}
                        for c in doc.get("connections") or []],
        "attribution": {"provider": attribution.get("provider") or "Open Charge Map",
                        "license": attribution.get("license")},
    }


def stations_near(repo: MirrorRepository, args: Any) -> list[dict[str, Any]]:
    """Live stations within ``radiusKm`` of (lat, lon), nearest first, at most ``first``."""
    a = _load(StationsNearArgs(), args)
    first = a["first"] or DEFAULT_FIRST
    radius = a["radiusKm"]
    for _ in range(MAX_SHRINKS + 1):
        hits = _hits_within(repo, a["lat"], a["lon"], radius)
        # Complete when the box was not cut; a shrunk circle answers only if it holds ``first`` hits,
        # because then nothing outside it can be nearer than they are.
        if hits is not None and (radius == a["radiusKm"] or len(hits) >= first):
            return [to_station(doc, distance) for distance, _, doc in hits[:first]]
        if hits is not None:
            break  # the smaller circle is too sparse and the full one too dense: no exact answer
        radius /= 2
    raise ValidationError("Invalid input: radiusKm: too many stations in this area; use a smaller radiusKm.",
                          details={"radiusKm": "too many stations in this area"})


def _hits_within(repo: MirrorRepository, lat: float, lon: float,
                 radius: float) -> list[tuple[float, int, dict[str, Any]]] | None:
    """Stations within ``radius``, nearest first; ``None`` when the box held more than we read.

    The store returns box candidates in no particular order, so a cut list could
    miss the nearest: ask for one more than the cap to know whether it was cut.
    """
    south, north, lon_ranges = bounding_box(lat, lon, radius)
    candidates = repo.in_box(south, north, lon_ranges, MAX_BOX_CANDIDATES + 1)
    if len(candidates) > MAX_BOX_CANDIDATES:
        return None
    hits = []
    for doc in candidates:
        distance = haversine_km(lat, lon, doc["lat"], doc["lon"])
        if distance <= radius:
            hits.append((distance, doc["ocm_id"], doc))
    hits.sort(key=lambda h: (h[0], h[1]))
    return hits


def station(repo: MirrorRepository, args: Any) -> dict[str, Any] | None:
    """One station by OCM id, removed ones included (flagged); ``None`` when never mirrored."""
    a = _load(StationArgs(), args)
    doc = repo.by_ocm_id(a["ocmId"])
    return None if doc is None else to_station(doc)
