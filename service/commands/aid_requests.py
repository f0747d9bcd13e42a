"""Raising, cancelling, escalating and expiring requests (`AidRequest`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlmodel import col, select

from service.commands import offer_answers, rosters
from service.commands.claims import tally_of
from service.commands.context import (
    CommandContext,
    audience_of,
    claim_cities,
    current_audience,
    fresh,
    incident_viewers,
    lock_incident,
    require_city,
    visible_incident,
)
from service.commands.escalation import escalate_raised, ring_intervals
from service.commands.presenters import as_json, claim_public, request_public
from service.domain import claims as rules
from service.domain import dispatch
from service.domain import lifecycles as lc
from service.domain import rosters as roster_rules
from service.domain.actors import Role
from service.domain.errors import (
    CoordinatesPair,
    Invalid,
    NotFound,
    NotInFuture,
    RequestingManagerOnly,
    UnknownResource,
)
from service.domain.events import EventType
from service.domain.rings import CityPoint, Target, next_escalation_at, select_targets
from service.models import AidRequestCreate
from service.persistence.tables import (
    AidRequest,
    City,
    Claim,
    Incident,
    NetworkMembership,
    RequestTarget,
)


def raise_request(ctx: CommandContext, incident_id: int, body: AidRequestCreate) -> AidRequest:
    city_id = require_city(ctx.actor, Role.MANAGER)
    visible_incident(ctx.session, ctx.actor, incident_id)
    incident = lock_incident(ctx.session, incident_id)
    if incident.city_id != city_id:
        raise RequestingManagerOnly(
            "only the requesting city's manager can raise requests in this incident"
        )
    lc.ensure_incident_active(lc.IncidentStatus(incident.status), "raise a request")
    kind = resource_kind(ctx, body.resource, body.kind)
    if body.needed_by is not None and body.needed_by <= ctx.now:
        raise NotInFuture("needed_by")
    if (body.report_lat is None) != (body.report_lon is None):
        raise CoordinatesPair("give both report_lat and report_lon, or neither")
    return add_request(ctx, incident, compute_targets(ctx, incident), body, kind)


def resource_kind(ctx: CommandContext, resource_id: str, asked_kind: str | None) -> lc.RequestKind:
    resource = ctx.catalogue.get(resource_id)
    if resource is None:
        matches = ctx.catalogue.close_matches(resource_id)
        hint = f" (did you mean: {', '.join(matches)}?)" if matches else ""
        raise UnknownResource(f"unknown resource '{resource_id}'{hint}", resource_id)
    if asked_kind is not None and asked_kind != resource.kind:
        raise Invalid(f"resource '{resource_id}' is of kind '{resource.kind}', not '{asked_kind}'")
    return lc.RequestKind(resource.kind)


def compute_targets(ctx: CommandContext, incident: Incident) -> list[Target]:
    cities = {
        c.id: CityPoint(c.id, c.lat, c.lon)
        for c in ctx.session.exec(select(City)).all()
        if c.id is not None
    }
    memberships: dict[int, set[int]] = {}
    for m in ctx.session.exec(select(NetworkMembership)).all():
        memberships.setdefault(m.network_id, set()).add(m.city_id)
    origin = CityPoint(incident.city_id, incident.lat, incident.lon)
    return select_targets(
        origin,
        cities,
        {n: frozenset(members) for n, members in memberships.items()},
        incident.ring0_radius_km,
    )


def add_request(
    ctx: CommandContext,
    incident: Incident,
    targets: list[Target],
    body: AidRequestCreate,
    kind: lc.RequestKind,
) -> AidRequest:
    """Insert a request and its targets, and emit `request.raised` (incident already locked)."""
    return add_requests(ctx, incident, targets, [(body, kind)])[0]


def add_requests(
    ctx: CommandContext,
    incident: Incident,
    targets: list[Target],
    bodies: list[tuple[AidRequestCreate, lc.RequestKind]],
) -> list[AidRequest]:
    """Insert requests that share their targets (those of the incident's place), and emit
    a `request.raised` for each, in order (incident already locked).

    Written in a fixed number of statements however many requests a playbook raises:
    the requests in one INSERT, every target row in one executemany of plain rows (a
    declaration in a network of 100 cities writes ~1,000 of them; ORM objects and a
    flush per request took most of the time of declaring), the incident's viewers read
    once, the events inserted together when the command's transaction flushes."""
    assert incident.id is not None
    escalation_at = next_escalation_at(0, ctx.now, ring_intervals(incident))
    requests = [
        AidRequest(
            incident_id=incident.id,
            city_id=incident.city_id,
            kind=kind.value,
            resource=body.resource,
            quantity=body.quantity,
            priority=body.priority,
            needed_by=body.needed_by,
            report_to=body.report_to,
            report_lat=body.report_lat,
            report_lon=body.report_lon,
            notes=body.notes,
            status=lc.RequestStatus.OPEN.value,
            ring=0,
            ring_entered_at=ctx.now,
            next_escalation_at=escalation_at,
            created_at=ctx.now,
            updated_at=ctx.now,
        )
        for body, kind in bodies
    ]
    ctx.session.add_all(requests)
    ctx.session.flush()
    rows = [
        {
            "request_id": request.id,
            "city_id": t.city_id,
            "ring": t.ring,
            "distance_km": t.distance_km,
        }
        for request in requests
        for t in targets
    ]
    if rows:
        ctx.session.execute(insert(RequestTarget), rows)
    rings = {t.city_id: t.ring for t in targets}
    viewers = incident_viewers(ctx.session, incident)
    for request in requests:
        ctx.emit(
            incident,
            EventType.REQUEST_RAISED,
            {"request": as_json(request_public(request))},
            cities=audience_of(request, rings),
            viewers=viewers,
        )
    escalate_raised(ctx, incident, requests, rings)
    return requests


def cancel_request(ctx: CommandContext, request_id: int) -> AidRequest:
    city_id = require_city(ctx.actor, Role.MANAGER)
    request = _visible_request(ctx, request_id)
    incident = lock_incident(ctx.session, request.incident_id)
    request = fresh(ctx.session, AidRequest, request_id, "request")
    if request.city_id != city_id:
        raise RequestingManagerOnly("only the requesting city's manager can cancel this request")
    end_request(ctx, incident, request, lc.RequestStatus.CANCELLED, EventType.REQUEST_CANCELLED)
    return request


def _visible_request(ctx: CommandContext, request_id: int) -> AidRequest:
    request = ctx.session.get(AidRequest, request_id)
    missing = f"request {request_id} not found"
    if request is None:
        raise NotFound(missing)
    visible_incident(ctx.session, ctx.actor, request.incident_id, missing)
    return request


def end_request(
    ctx: CommandContext,
    incident: Incident,
    request: AidRequest,
    final: lc.RequestStatus,
    event_type: EventType,
) -> None:
    """Move a request to a final status and end the claims that depend on it, as the
    claim core's `request_end` says (cancelling declines claims not yet on site; expiry
    lets claims never accepted expire). Their quantity leaves `claimed_quantity`."""
    tally = tally_of(request)
    end = rules.request_end(tally, final)
    claims = ctx.session.exec(
        select(Claim).where(
            col(Claim.request_id) == request.id,
            col(Claim.status).in_(sorted(s.value for s in end.ending)),
        )
    ).all()
    audience = sorted(
        set(current_audience(ctx.session, request)) | claim_cities(ctx.session, request.id or 0)
    )
    after = rules.end_request(tally, final, (claim.quantity for claim in claims))
    packages: dict[int, dict[str, Any]] = {}
    for claim in claims:
        claim_before = lc.ClaimStatus(claim.status)
        claim.status = end.claim_status.value
        claim.end_reason = dispatch.request_end_reason(final)
        claim.updated_at = ctx.now
        ctx.session.add(claim)
        if roster_rules.gives_back(claim_before, end.claim_status):
            package = rosters.give_back(ctx, claim, request.resource)
            if package is not None:
                packages[id(claim)] = package
    request.claimed_quantity = after.claimed_quantity
    request.status = after.status.value
    request.next_escalation_at = None
    request.updated_at = ctx.now
    ctx.session.add(request)
    ctx.session.flush()
    for claim in claims:
        data = {"claim": as_json(claim_public(claim)), "request": as_json(request_public(request))}
        if id(claim) in packages:
            data["package"] = packages[id(claim)]
        ctx.emit(incident, EventType.CLAIM_CHANGED, data, cities=audience)
    ctx.emit(incident, event_type, {"request": as_json(request_public(request))}, cities=audience)
    offer_answers.answer_offers(ctx, incident, request)
