"""Moving a request outward: by its timer (the sweep), when its ring has passed
(`commands.passes`), and when what its ring's rosters hold cannot cover what is still
unclaimed (`passes.ring_cannot_cover`, "cover").

Every move happens under the request's incident lock, on the request as it is then, so
each ring is entered once however many replicas, passes and roster changes race for
it. The cover is judged where its answer can turn to "cannot": when a request is raised
or enters a ring, when a city passes, when a claim ends and leaves more unclaimed, and
when a city's roster holds less (its first package, a package marked unavailable,
resized or removed, units committed to a claim). A package whose time away ends only
ever makes the cover larger, so the passing of time needs no check.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, not_, or_
from sqlalchemy import select as select_columns
from sqlmodel import col, select

from service.commands.context import (
    CommandContext,
    current_audience,
    fresh,
    lock_incident,
    target_reached,
    target_rings,
)
from service.commands.presenters import as_json, request_public
from service.domain import lifecycles as lc
from service.domain import passes as rules
from service.domain.events import EventType
from service.domain.rings import LAST_RING, next_escalation_at
from service.persistence.tables import (
    AidRequest,
    Incident,
    PackageItem,
    RequestPass,
    RequestTarget,
    RosterPackage,
)

_OPEN = [s.value for s in lc.CLAIMABLE_REQUEST_STATUSES]


def ring_intervals(incident: Incident) -> tuple[timedelta, ...]:
    return tuple(timedelta(seconds=s) for s in incident.ring_intervals_s)


def move_outward(ctx: CommandContext, incident: Incident, request: AidRequest, cause: str) -> int:
    """Move an open request (its incident locked) to the next ring that reaches someone
    new, and fan it out there; `cause` is "timer", "passes" or "cover". Returns the new
    ring. Callers check under the lock that the request is still in the ring they saw, so
    each ring is entered once however many replicas and passes race for it."""
    request_id = request.id or 0
    from_ring = request.ring
    to_ring = _next_ring_with_new_cities(ctx, request)
    reached = [
        int(c)
        for c in ctx.session.exec(
            select(RequestTarget.city_id).where(
                col(RequestTarget.request_id) == request_id,
                target_reached(to_ring),
                not_(target_reached(from_ring)),
            )
        ).all()
    ]
    request.ring = to_ring
    request.ring_entered_at = ctx.now
    request.next_escalation_at = next_escalation_at(to_ring, ctx.now, ring_intervals(incident))
    request.updated_at = ctx.now
    ctx.session.add(request)
    ctx.emit(
        incident,
        EventType.REQUEST_ESCALATED,
        {
            "request": as_json(request_public(request)),
            "from_ring": from_ring,
            "to_ring": to_ring,
            "reached_city_ids": sorted(reached),
            "cause": cause,
        },
        cities=current_audience(ctx.session, request),
    )
    return to_ring


def _next_ring_with_new_cities(ctx: CommandContext, request: AidRequest) -> int:
    """The next ring outward, skipping rings that reach nobody new (up to the last ring)."""
    rings = {
        int(r)
        for r in ctx.session.exec(
            select(RequestTarget.ring).where(
                col(RequestTarget.request_id) == request.id, col(RequestTarget.ring) > request.ring
            )
        ).all()
    }
    return min(rings) if rings else min(request.ring + 1, LAST_RING)


# Cover ----------------------------------------------------------------------------------


def holdings(
    ctx: CommandContext, city_ids: Iterable[int], resources: Iterable[str]
) -> dict[int, dict[str, int]]:
    """For each of the cities that keeps a roster: the units of each of `resources` its
    packages hold available now, under their caps (`rosters.available_now` as SQL).
    A city with no package is left out: it says nothing of what it holds."""
    cities = sorted(set(city_ids))
    wanted = sorted(set(resources))
    if not cities or not wanted:
        return {}
    now = or_(col(RosterPackage.available), col(RosterPackage.unavailable_until) <= ctx.now)
    left = col(PackageItem.cap_quantity) - col(PackageItem.committed_quantity)
    rows = ctx.session.exec(
        select(
            RosterPackage.city_id,
            PackageItem.resource,
            func.sum(left),
        )
        .select_from(RosterPackage)
        .outerjoin(
            PackageItem,
            (col(PackageItem.package_id) == col(RosterPackage.id))
            & col(PackageItem.resource).in_(wanted)
            & now,
        )
        .where(col(RosterPackage.city_id).in_(cities))
        .group_by(col(RosterPackage.city_id), col(PackageItem.resource))
    ).all()
    held: dict[int, dict[str, int]] = {}
    for city_id, resource, units in rows:
        of_city = held.setdefault(int(city_id), {})
        if resource is not None:
            of_city[resource] = int(units or 0)
    return held


def uncovered(ctx: CommandContext, request: AidRequest, rings: dict[int, int]) -> bool:
    """Whether the request's current ring cannot cover what is still unclaimed."""
    current = [city for city, ring in rings.items() if ring == request.ring]
    if not current:
        return False
    passed = ctx.session.exec(
        select(RequestPass.city_id).where(col(RequestPass.request_id) == request.id)
    ).all()
    held = holdings(ctx, current, [request.resource])
    return rules.ring_cannot_cover(
        rings,
        request.ring,
        passed,
        {city: of_city.get(request.resource, 0) for city, of_city in held.items()},
        request.quantity - request.claimed_quantity,
    )


def escalate_while_uncovered(
    ctx: CommandContext, incident: Incident, request: AidRequest
) -> int | None:
    """Move the request (its incident locked) outward, one ring at a time, while its
    current ring cannot cover what is still unclaimed. Returns the last ring entered."""
    moved = None
    while request.status in _OPEN and request.ring < LAST_RING:
        if not uncovered(ctx, request, target_rings(ctx.session, request.id or 0)):
            break
        moved = move_outward(ctx, incident, request, "cover")
    return moved


def escalate_raised(
    ctx: CommandContext, incident: Incident, requests: Sequence[AidRequest], rings: dict[int, int]
) -> None:
    """Requests just raised into ring 0 (all with the same targets, `rings`; their incident
    locked) that ring 0 cannot cover move on at once; one read for them all."""
    ring0 = [city for city, ring in rings.items() if ring == 0]
    if not ring0 or not requests:
        return
    held = holdings(ctx, ring0, {r.resource for r in requests})
    for request in requests:
        of_resource = {city: of_city.get(request.resource, 0) for city, of_city in held.items()}
        unclaimed = request.quantity - request.claimed_quantity
        if rules.ring_cannot_cover(rings, 0, (), of_resource, unclaimed):
            move_outward(ctx, incident, request, "cover")
            escalate_while_uncovered(ctx, incident, request)


def escalate_after_roster_change(
    ctx: CommandContext, city_id: int, resources: Iterable[str] | None = None
) -> None:
    """A city's roster holds less than before (of `resources`, or of anything): the open
    requests whose current ring holds the city are judged again, each under its
    incident's lock (taken in incident order, as every command takes them)."""
    _judge_again(ctx, _in_rings_of(ctx, {city_id: None if resources is None else set(resources)}))


def escalate_after_commits(ctx: CommandContext, commits: Iterable[tuple[int, str]]) -> None:
    """Claims from packages committed elsewhere (the PostgreSQL claim batches): each
    (city, resource) holds less; the open requests they cover are judged again together,
    under their incidents' locks in incident order."""
    by_city: dict[int, set[str] | None] = {}
    for city_id, resource in commits:
        of_city = by_city.setdefault(city_id, set())
        assert of_city is not None
        of_city.add(resource)
    _judge_again(ctx, _in_rings_of(ctx, by_city))


@dataclass(frozen=True)
class _Open:
    """An open request as the cover needs it, with the ring of each city it targets."""

    incident_id: int
    ring: int
    resource: str
    unclaimed: int
    rings: dict[int, int] = field(default_factory=dict)


# Requests read at a time when the cover of many is judged again.
_CHUNK = 500


def _in_rings_of(ctx: CommandContext, changed: dict[int, set[str] | None]) -> dict[int, _Open]:
    """The open requests whose current ring holds a city of `changed` (of the resources
    given for it; None: of any), by id, that the change may have left uncovered. Given
    the resources, a request the city alone still covers is not among them: its ring
    holds at least the city's units (or the city passed on it, and then its units never
    counted), so the change cannot have made it fall short; nor is any request of a city
    that keeps no roster (it says nothing of what it holds). So the requests are read
    first by what they still lack, and their targets only for the few that lack more
    than some changed city holds."""
    given = {city: resources for city, resources in changed.items() if resources is not None}
    held = holdings(ctx, given, set().union(*given.values())) if given else {}
    # A city of `changed` and what the requests its change may concern lack: more than
    # it holds of a resource (None: any request).
    floors: dict[int, dict[str, int] | None] = {
        city: None if resources is None else {r: held[city].get(r, 0) for r in resources}
        for city, resources in changed.items()
        if resources is None or city in held
    }
    if not floors:
        return {}
    unclaimed = col(AidRequest.quantity) - col(AidRequest.claimed_quantity)
    query = select_columns(
        col(AidRequest.id),
        col(AidRequest.incident_id),
        col(AidRequest.ring),
        col(AidRequest.resource),
        unclaimed,
    ).where(col(AidRequest.status).in_(_OPEN), col(AidRequest.ring) < LAST_RING)
    if all(floor is not None for floor in floors.values()):
        lowest: dict[str, int] = {}
        for floor in floors.values():
            assert floor is not None
            for resource, units in floor.items():
                lowest[resource] = min(units, lowest.get(resource, units))
        query = query.where(
            or_(
                *(
                    (col(AidRequest.resource) == resource) & (unclaimed > units)
                    for resource, units in sorted(lowest.items())
                )
            )
        )
    else:
        ring_of_city = (col(RequestTarget.request_id) == col(AidRequest.id)) & (
            col(RequestTarget.ring) == col(AidRequest.ring)
        )
        query = query.join(RequestTarget, ring_of_city).where(
            col(RequestTarget.city_id).in_(sorted(floors))
        )
    candidates = {
        int(request_id or 0): _Open(int(incident_id), int(ring), resource, int(left))
        for request_id, incident_id, ring, resource, left in ctx.session.execute(query)
    }
    # Every target of the candidates, read once: which changed city their current ring
    # holds, and the rings the cover is judged on.
    ids = sorted(candidates)
    for start in range(0, len(ids), _CHUNK):
        for request_id, city_id, ring in ctx.session.exec(
            select(RequestTarget.request_id, RequestTarget.city_id, RequestTarget.ring).where(
                col(RequestTarget.request_id).in_(ids[start : start + _CHUNK])
            )
        ):
            candidates[int(request_id)].rings[int(city_id)] = int(ring)

    def concerned(open_: _Open) -> bool:
        for city_id, floor in floors.items():
            if open_.rings.get(city_id) == open_.ring and (
                floor is None or open_.unclaimed > floor.get(open_.resource, open_.unclaimed)
            ):
                return True
        return False

    return {r: open_ for r, open_ in candidates.items() if concerned(open_)}


def _judge_again(ctx: CommandContext, found: dict[int, _Open]) -> None:
    """Judge the cover of `found` from a few reads for them all, then move those it
    cannot cover, each judged again under its incident's lock (incidents in id order):
    what the reads saw may have changed, and the move is decided on the rows as locked."""
    suspects = sorted((found[r].incident_id, r) for r in _uncovered_among(ctx, found))
    locked: dict[int, Incident] = {}
    for incident_id, request_id in suspects:
        if incident_id not in locked:
            locked[incident_id] = lock_incident(ctx.session, incident_id)
        request = fresh(ctx.session, AidRequest, request_id, "request")
        escalate_while_uncovered(ctx, locked[incident_id], request)


def _uncovered_among(ctx: CommandContext, found: dict[int, _Open]) -> set[int]:
    """The requests of `found` whose current ring cannot cover what is left unclaimed
    (`uncovered`, for many at once: their passes and the rings' holdings read together;
    their targets came with them)."""
    ids = sorted(r for r, open_ in found.items() if open_.unclaimed > 0)
    rings = {r: found[r].rings for r in ids}
    passed: dict[int, list[int]] = {r: [] for r in ids}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        for request_id, city_id in ctx.session.exec(
            select(RequestPass.request_id, RequestPass.city_id).where(
                col(RequestPass.request_id).in_(chunk)
            )
        ):
            passed[int(request_id)].append(int(city_id))
    in_current = {city for r in ids for city, ring in rings[r].items() if ring == found[r].ring}
    held = holdings(ctx, in_current, {found[r].resource for r in ids})
    return {
        r
        for r in ids
        if rules.ring_cannot_cover(
            rings[r],
            found[r].ring,
            passed[r],
            {city: of_city.get(found[r].resource, 0) for city, of_city in held.items()},
            found[r].unclaimed,
        )
    }
