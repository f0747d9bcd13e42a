"""Passing on a request: a targeted city says it cannot help. When every city of the
request's current ring has passed, the request moves to the next ring at once, in the
same transaction, through the escalation sweep's own step (`escalation.move_outward`);
so does a pass that leaves the ring's rosters unable to cover the request."""

from __future__ import annotations

from sqlmodel import col, select

from service.commands.context import (
    CommandContext,
    audience_of,
    locked,
    require_city,
    target_rings,
    visible_incident,
)
from service.commands.escalation import escalate_while_uncovered, move_outward
from service.commands.presenters import as_json, request_public
from service.domain import lifecycles as lc
from service.domain import passes as rules
from service.domain.actors import Role
from service.domain.claims import ring_reaches
from service.domain.errors import NotFound
from service.domain.events import EventType
from service.domain.rings import LAST_RING
from service.models import Page, PassCreate, PassPublic
from service.persistence.tables import AidRequest, RequestPass


def pass_request(ctx: CommandContext, request_id: int, body: PassCreate) -> PassPublic:
    city_id = require_city(ctx.actor, Role.RESPONDER, Role.MANAGER)
    incident, request = locked(ctx.session, AidRequest, request_id, "request")
    rings = target_rings(ctx.session, request_id)
    if city_id != request.city_id and not ring_reaches(rings.get(city_id), request.ring):
        # A city that cannot see the incident learns nothing of the request.
        visible_incident(
            ctx.session, ctx.actor, incident.id or 0, f"request {request_id} not found"
        )
    passed = set(
        ctx.session.exec(
            select(RequestPass.city_id).where(col(RequestPass.request_id) == request_id)
        ).all()
    )
    rules.check_pass(
        city_id=city_id,
        requesting_city_id=request.city_id,
        city_ring=rings.get(city_id),
        request_ring=request.ring,
        request_status=lc.RequestStatus(request.status),
        incident_status=lc.IncidentStatus(incident.status),
        passed_before=city_id in passed,
    )
    row = RequestPass(
        request_id=request_id,
        city_id=city_id,
        ring=request.ring,
        reason=body.reason,
        passed_by_token_id=ctx.actor.token_id,
        passed_at=ctx.now,
    )
    ctx.session.add(row)
    ctx.session.flush()
    shown = PassPublic.model_validate(row)
    ctx.emit(
        incident,
        EventType.REQUEST_PASSED,
        {"request": as_json(request_public(request)), "pass": as_json(shown)},
        cities=audience_of(request, rings),
    )
    if request.ring < LAST_RING and rules.ring_exhausted(rings, request.ring, passed | {city_id}):
        shown.escalated_to_ring = move_outward(ctx, incident, request, "passes")
    # The passing city's units no longer count toward the ring's cover.
    covered_to = escalate_while_uncovered(ctx, incident, request)
    if covered_to is not None:
        shown.escalated_to_ring = covered_to
    return shown


def list_passes(ctx: CommandContext, request_id: int, limit: int, offset: int) -> Page[PassPublic]:
    """The passes on a request, for every city that can see its incident."""
    request = ctx.session.get(AidRequest, request_id)
    missing = f"request {request_id} not found"
    if request is None:
        raise NotFound(missing)
    visible_incident(ctx.session, ctx.actor, request.incident_id, missing)
    where = col(RequestPass.request_id) == request_id
    rows = ctx.session.exec(
        select(RequestPass)
        .where(where)
        .order_by(col(RequestPass.passed_at), col(RequestPass.city_id))
    ).all()
    data = [PassPublic.model_validate(r) for r in rows[offset : offset + limit]]
    next_offset = offset + len(data) if offset + len(data) < len(rows) else None
    return Page[PassPublic](
        data=data, count=len(rows), limit=limit, offset=offset, next_offset=next_offset
    )
