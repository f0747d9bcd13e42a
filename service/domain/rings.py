"""Targeting: which cities a request reaches at each escalation ring.

ring 0 — cities of the requesting city's networks within the first radius;
ring 1 — every city of those networks;
ring 2 — every city of every network that any ring-1 city belongs to
         (the networks reachable through the requesting city's own).
The requesting city itself is never a target.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

EARTH_RADIUS_KM = 6371.0088
LAST_RING = 2


@dataclass(frozen=True, slots=True)
class CityPoint:
    city_id: int
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Target:
    city_id: int
    ring: int
    distance_km: float


def distance_km(a_lat: float, a_lon: float, b_lat: float, b_lon: float) -> float:
    """Great-circle distance (haversine)."""
    phi1, phi2 = math.radians(a_lat), math.radians(b_lat)
    dphi = phi2 - phi1
    dlmb = math.radians(b_lon - a_lon)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def select_targets(
    origin: CityPoint,
    cities: Mapping[int, CityPoint],
    memberships: Mapping[int, frozenset[int]],
    ring0_radius_km: float,
) -> list[Target]:
    """Every city a request of `origin` may reach, each with the innermost ring that reaches it.

    `memberships` maps network id → its member city ids.
    """
    own_networks = {n for n, members in memberships.items() if origin.city_id in members}
    ring1 = _members_of(memberships, own_networks)
    outer_networks = {
        n for n, members in memberships.items() if members & ring1 or n in own_networks
    }
    ring2 = _members_of(memberships, outer_networks)

    targets: list[Target] = []
    for city_id in sorted(ring2 - {origin.city_id}):
        city = cities.get(city_id)
        if city is None:
            continue
        d = distance_km(origin.lat, origin.lon, city.lat, city.lon)
        ring = (0 if d <= ring0_radius_km else 1) if city_id in ring1 else 2
        targets.append(Target(city_id=city_id, ring=ring, distance_km=round(d, 1)))
    return targets


def _members_of(memberships: Mapping[int, frozenset[int]], networks: Iterable[int]) -> set[int]:
    found: set[int] = set()
    for n in networks:
        found |= memberships[n]
    return found


def next_escalation_at(
    ring: int, ring_started_at: datetime, intervals: tuple[timedelta, ...]
) -> datetime | None:
    """When a request that entered `ring` at `ring_started_at` moves outward.

    None at the last ring.
    """
    if ring >= LAST_RING or ring >= len(intervals):
        return None
    return ring_started_at + intervals[ring]


def cities_reached(targets: Iterable[Target], from_ring: int, to_ring: int) -> list[int]:
    """Cities first reached when a request moves from `from_ring` to `to_ring`."""
    return sorted(t.city_id for t in targets if from_ring < t.ring <= to_ring)
