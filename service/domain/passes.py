"""Passes: a targeted city's explicit "we cannot help with this one", and when the passes
of a ring move the request on at once instead of waiting for its timer.

Pure functions over plain values; `service.commands.passes` reads and writes the rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from service.domain import lifecycles as lc
from service.domain.claims import ring_reaches
from service.domain.errors import (
    AlreadyPassed,
    NotAimedAtCity,
    OwnRequest,
    RequestNotOpen,
)


def check_pass(
    *,
    city_id: int,
    requesting_city_id: int,
    city_ring: int | None,
    request_ring: int,
    request_status: lc.RequestStatus,
    incident_status: lc.IncidentStatus,
    passed_before: bool,
) -> None:
    """Refuse a pass the city may not make: its own request, a request that does not
    reach it (yet), one no longer open, a closed incident, or a second pass."""
    if city_id == requesting_city_id:
        raise OwnRequest("a city cannot pass on its own request")
    if not ring_reaches(city_ring, request_ring):
        raise NotAimedAtCity()
    lc.ensure_incident_active(incident_status, "pass")
    if request_status not in lc.CLAIMABLE_REQUEST_STATUSES:
        raise RequestNotOpen(request_status, "passed", "it is no longer open")
    if passed_before:
        raise AlreadyPassed()


def ring_exhausted(rings: Mapping[int, int], request_ring: int, passed: Iterable[int]) -> bool:
    """Whether every city of the request's current ring (`rings`: city → the ring that
    reaches it) has passed. The cities of the inner rings had their turn when those
    rings were current; a ring with no city of its own is never exhausted by passes."""
    current = {city for city, ring in rings.items() if ring == request_ring}
    return bool(current) and current <= set(passed)


def ring_cannot_cover(
    rings: Mapping[int, int],
    request_ring: int,
    passed: Iterable[int],
    holdings: Mapping[int, int],
    unclaimed: int,
) -> bool:
    """Whether the request's current ring cannot cover the `unclaimed` units, so the
    request moves on without waiting for its timer.

    `holdings` maps each city that keeps a roster (one package or more) to the units of
    the request's resource its packages hold available now, under their caps. The cities
    of the ring that have passed hold nothing for it. A city with no roster says nothing
    of what it holds, so the ring is judged only when every city of it that has not
    passed keeps a roster; a ring of nobody is never judged (as with passes)."""
    current = {city for city, ring in rings.items() if ring == request_ring}
    if not current or unclaimed <= 0:
        return False
    waiting = current - set(passed)
    if any(city not in holdings for city in waiting):
        return False
    return sum(holdings[city] for city in waiting) < unclaimed
