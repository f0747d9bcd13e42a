"""Matching: for each open request, the packages of the cities it targets that hold its
resource available now. Shown to the requesting city (who could help); the cities read
the same from their own roster on their inbox (your roster has this)."""

from __future__ import annotations

from collections.abc import Sequence

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


def lenders_of(
    ctx: CommandContext, requests: Sequence[AidRequest]
) -> dict[int, list[rules.Lender]]:
    """Each request's lenders (request id → packages that can lend now, ranked), in one read."""
    ids = [r.id for r in requests if r.id is not None]
    rows = ctx.session.execute(
        select_columns(
            col(RequestTarget.request_id),
            col(RequestTarget.city_id),
            col(RequestTarget.ring),
            col(RequestTarget.distance_km),
            col(RosterPackage.id),
            col(RosterPackage.name),
            col(RosterPackage.readiness_hours),
            col(RosterPackage.available),
            col(RosterPackage.unavailable_until),
            col(PackageItem.cap_quantity),
            col(PackageItem.committed_quantity),
        )
        .join(AidRequest, col(AidRequest.id) == col(RequestTarget.request_id))
        .join(RosterPackage, col(RosterPackage.city_id) == col(RequestTarget.city_id))
        .join(
            PackageItem,
            (col(PackageItem.package_id) == col(RosterPackage.id))
            & (col(PackageItem.resource) == col(AidRequest.resource)),
        )
        .where(
            col(RequestTarget.request_id).in_(ids),
            col(PackageItem.committed_quantity) < col(PackageItem.cap_quantity),
        )
    ).all()
    found: dict[int, list[rules.Lender]] = {i: [] for i in ids}
    for request_id, city, ring, km, pkg, name, ready, available, until, cap, held in rows:
        if rules.available_now(available, until, ctx.now):
            found[request_id].append(
                rules.Lender(city, ring, km, pkg, name, ready, max(cap - held, 0))
            )
    return {i: rules.who_could_help(lenders) for i, lenders in found.items()}


def _matches(request: AidRequest, lenders: list[rules.Lender]) -> RequestMatches:
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
        for x in lenders
    ]
    return RequestMatches(
        request_id=request.id or 0,
        resource=request.resource,
        remaining_quantity=request.quantity - request.claimed_quantity,
        lenders=shown,
        available_quantity=sum(x.remaining_quantity for x in shown if x.reached),
    )


def incident_matches(
    ctx: CommandContext, incident_id: int, limit: int, offset: int
) -> Page[RequestMatches]:
    """Who could help with each open request of the incident, in request order."""
    incident = visible_incident(ctx.session, ctx.actor, incident_id)
    _requesting_city(ctx, incident)
    where = (col(AidRequest.incident_id) == incident_id, col(AidRequest.status).in_(_OPEN))
    requests = ctx.session.exec(
        select(AidRequest).where(*where).order_by(col(AidRequest.id)).limit(limit).offset(offset)
    ).all()
    total = len(ctx.session.exec(select(AidRequest.id).where(*where)).all())
    lenders = lenders_of(ctx, requests)
    data = [_matches(r, lenders[r.id or 0]) for r in requests]
    next_offset = offset + len(data) if offset + len(data) < total else None
    return Page[RequestMatches](
        data=data, count=total, limit=limit, offset=offset, next_offset=next_offset
    )


def request_matches(ctx: CommandContext, request_id: int) -> RequestMatches:
    """Who could help with one request (an empty list once it is no longer open)."""
    request = ctx.session.get(AidRequest, request_id)
    missing = f"request {request_id} not found"
    if request is None:
        raise NotFound(missing)
    incident = visible_incident(ctx.session, ctx.actor, request.incident_id, missing)
    _requesting_city(ctx, incident)
    if request.status not in _OPEN:
        return _matches(request, [])
    return _matches(request, lenders_of(ctx, [request])[request_id])
