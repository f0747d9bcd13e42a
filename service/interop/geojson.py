"""RFC 7946 GeoJSON: an incident (its location, the requesting city, the cities its
requests reach with ring and distance, the claiming cities with their units) and the
network's cities, for QGIS or a web map.

Coordinates are [longitude, latitude]; no `crs` member (RFC 7946 section 4).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.models import CityPublic, IncidentDetail

GEOJSON_MEDIA_TYPE = "application/geo+json"


@dataclass(frozen=True)
class Reach:
    """A city one of the incident's requests reaches now: its ring and distance."""

    request_id: int
    city_id: int
    ring: int
    distance_km: float


def _point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]}


def _feature(lon: float, lat: float, properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": _point(lon, lat), "properties": properties}


def incident_collection(
    incident: IncidentDetail, cities: Mapping[int, CityPublic], reach: Sequence[Reach]
) -> dict[str, Any]:
    """The incident as a FeatureCollection; each feature's `role` says what it is."""
    features = [
        _feature(
            incident.lon,
            incident.lat,
            {
                "role": "incident",
                "incident_id": incident.id,
                "title": incident.title,
                "incident_type": incident.incident_type,
                "severity": incident.severity,
                "status": incident.status,
                "exercise": incident.exercise,
            },
        )
    ]
    home = cities.get(incident.city_id)
    if home is not None:
        features.append(_feature(home.lon, home.lat, {"role": "requesting_city", **_city(home)}))
    requests = {r.id: r for r in incident.requests}
    for item in reach:
        city = cities.get(item.city_id)
        request = requests.get(item.request_id)
        if city is None or request is None or item.city_id == incident.city_id:
            continue
        features.append(
            _feature(
                city.lon,
                city.lat,
                {
                    "role": "reached_city",
                    **_city(city),
                    "request_id": item.request_id,
                    "resource": request.resource,
                    "ring": item.ring,
                    "distance_km": round(item.distance_km, 1),
                },
            )
        )
    for claim in incident.claims:
        city = cities.get(claim.city_id)
        request = requests.get(claim.request_id)
        if city is None or request is None:
            continue
        features.append(
            _feature(
                city.lon,
                city.lat,
                {
                    "role": "claiming_city",
                    **_city(city),
                    "claim_id": claim.id,
                    "request_id": claim.request_id,
                    "resource": request.resource,
                    "quantity": claim.quantity,
                    "status": claim.status,
                },
            )
        )
    return {"type": "FeatureCollection", "features": features}


def cities_collection(cities: Sequence[CityPublic]) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [_feature(c.lon, c.lat, {"role": "city", **_city(c)}) for c in cities],
    }


def _city(city: CityPublic) -> dict[str, Any]:
    return {
        "city_id": city.id,
        "slug": city.slug,
        "name": city.name,
        "country": city.country,
        "network_ids": city.network_ids,
    }
