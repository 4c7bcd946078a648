"""The station fields AppSync sends to the ``stations_resolver`` Lambda (``appsync/resolvers.json``).

Any signed-in caller may read the mirror. Each field hands its GraphQL arguments to
``stations``, whose schemas validate them (ranges, types) and name the field at fault.
"""

from __future__ import annotations

from typing import Any

from chalicelib.ocm import stations
from chalicelib.resolvers import DomainRouter, current_call

router = DomainRouter("stations")


@router.resolver(type_name="Query", field_name="stationsNear")
def stations_near(lat: Any = None, lon: Any = None, radiusKm: Any = None,  # the GraphQL arguments' names
                  first: Any = None) -> list[dict[str, Any]]:
    arguments = {"lat": lat, "lon": lon, "radiusKm": radiusKm, "first": first}
    return stations.stations_near(current_call().deps, arguments)


@router.resolver(type_name="Query", field_name="station")
def station(ocmId: Any = None) -> dict[str, Any] | None:
    return stations.station(current_call().deps, {"ocmId": ocmId})
