"""Matching: for each open request, the packages of the cities it targets that hold its
resource available now. Shown to the requesting city (who could help); the cities read
the same from their own roster on their inbox (your roster has this)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import case, func, or_
from sqlalchemy import select as select_columns
from sqlmodel import col, select

from service.commands.context import CommandContext, visible_incident
from service.domain import lifecycles as lc
from service.domain import rosters as rules
from service.domain.claims import ring_reaches
from service.domain.errors import Forbidden, NotFound
from service.models import LenderPublic, Page, RequestMatches
from service.persistence.tables import (
    AidRequest,
    Incident,
    PackageItem,
    RequestTarget,
    RosterPackage,
)

_OPEN = sorted(s.value for s in lc.CLAIMABLE_REQUEST_STATUSES)


def _requesting_city(ctx: CommandContext, incident: Incident) -> None:
    if not ctx.actor.is_admin and ctx.actor.city_id != incident.city_id:
        raise Forbidden("who could help is shown to the requesting city")


@dataclass(frozen=True, slots=True)
class Found:
    """A request's first lenders, how many there are, and what the reached ones hold."""

    lenders: list[rules.Lender]
    count: int = 0
    reached_quantity: int = 0


def lenders_of(ctx: CommandContext, requests: Sequence[AidRequest], top: int) -> dict[int, Found]:
    """Each request's first `top` lenders, ranked, with the count of all, in one read.

    The ranking and the availability are `rules.who_could_help` and
    `rules.available_now` as SQL, so that only the first lenders leave the database
    (a request of a big network has hundreds); the first are ranked again by the rule."""
    ids = [r.id for r in requests if r.id is not None]
    left = col(PackageItem.cap_quantity) - col(PackageItem.committed_quantity)
    by_request = col(RequestTarget.request_id)
    ranked = (
        select_columns(
            by_request.label("request_id"),
            col(RequestTarget.city_id).label("city_id"),
            col(RequestTarget.ring).label("ring"),
            col(RequestTarget.distance_km).label("distance_km"),
            col(RosterPackage.id).label("package_id"),
            col(RosterPackage.name).label("package_name"),
            col(RosterPackage.readiness_hours).label("readiness_hours"),
            left.label("remaining"),
            func.row_number()
            .over(
                partition_by=by_request,
                order_by=(
                    col(RequestTarget.ring),
                    col(RequestTarget.distance_km),
                    col(RosterPackage.readiness_hours),
                    col(RequestTarget.city_id),
                    col(RosterPackage.id),
                ),
            )
            .label("rank"),
            func.count().over(partition_by=by_request).label("total"),
            func.sum(case((col(RequestTarget.ring) <= col(AidRequest.ring), left), else_=0))
            .over(partition_by=by_request)
            .label("reached_quantity"),
        )
        .join(AidRequest, col(AidRequest.id) == by_request)
        .join(RosterPackage, col(RosterPackage.city_id) == col(RequestTarget.city_id))
        .join(
            PackageItem,
            (col(PackageItem.package_id) == col(RosterPackage.id))
            & (col(PackageItem.resource) == col(AidRequest.resource)),
        )
        .where(
            by_request.in_(ids),
            col(PackageItem.committed_quantity) < col(PackageItem.cap_quantity),
            or_(
                col(RosterPackage.available),
                col(RosterPackage.unavailable_until) <= ctx.now,
            ),
        )
        .subquery()
    )
    rows = ctx.session.execute(select_columns(ranked).where(ranked.c.rank <= top)).all()
    found: dict[int, Found] = {i: Found([]) for i in ids}
    for row in rows:
        lender = rules.Lender(
            row.city_id,
            row.ring,
            row.distance_km,
            row.package_id,
            row.package_name,
            row.readiness_hours,
            row.remaining,
        )
        entry = found[row.request_id]
        found[row.request_id] = Found(
            [*entry.lenders, lender], int(row.total), int(row.reached_quantity or 0)
        )
    return {
        i: Found(rules.who_could_help(f.lenders), f.count, f.reached_quantity)
        for i, f in found.items()
    }


def _matches(request: AidRequest, found: Found) -> RequestMatches:
    shown = [
        LenderPublic(
            city_id=x.city_id,
            ring=x.ring,
            reached=ring_reaches(x.ring, request.ring),
            distance_km=round(x.distance_km, 1),
            package_id=x.package_id,
            package_name=x.package_name,
            readiness_hours=x.readiness_hours,
            remaining_quantity=x.remaining_quantity,
        )
        for x in found.lenders
    ]
    return RequestMatches(
        request_id=request.id or 0,
        resource=request.resource,
        remaining_quantity=request.quantity - request.claimed_quantity,
        lenders=shown,
        lender_count=found.count,
        available_quantity=found.reached_quantity,
    )


def incident_matches(
    ctx: CommandContext, incident_id: int, limit: int, offset: int, top: int
) -> Page[RequestMatches]:
    """Who could help with each open request of the incident, in request order."""
    incident = visible_incident(ctx.session, ctx.actor, incident_id)
    _requesting_city(ctx, incident)
    where = (col(AidRequest.incident_id) == incident_id, col(AidRequest.status).in_(_OPEN))
    requests = ctx.session.exec(
        select(AidRequest).where(*where).order_by(col(AidRequest.id)).limit(limit).offset(offset)
    ).all()
    total = len(ctx.session.exec(select(AidRequest.id).where(*where)).all())
    found = lenders_of(ctx, requests, top)
    data = [_matches(r, found[r.id or 0]) for r in requests]
    next_offset = offset + len(data) if offset + len(data) < total else None
    return Page[RequestMatches](
        data=data, count=total, limit=limit, offset=offset, next_offset=next_offset
    )


def request_matches(ctx: CommandContext, request_id: int, top: int) -> RequestMatches:
    """Who could help with one request (an empty list once it is no longer open)."""
    request = ctx.session.get(AidRequest, request_id)
    missing = f"request {request_id} not found"
    if request is None:
        raise NotFound(missing)
    incident = visible_incident(ctx.session, ctx.actor, request.incident_id, missing)
    _requesting_city(ctx, incident)
    if request.status not in _OPEN:
        return _matches(request, Found([]))
    return _matches(request, lenders_of(ctx, [request], top)[request_id])
