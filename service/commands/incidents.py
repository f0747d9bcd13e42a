"""Declaring and closing incidents."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from playbooks import Playbook
from service.commands.aid_requests import (
    add_requests,
    compute_targets,
    end_request,
    resource_kind,
)
from service.commands.city_playbooks import city_playbook_row, playbook_of, playbooks_for
from service.commands.context import (
    CommandContext,
    fresh,
    lock_incident,
    require_city,
    visible_incident,
)
from service.commands.library import version_in_use
from service.commands.presenters import as_json, incident_public
from service.domain import declaring
from service.domain import lifecycles as lc
from service.domain.actors import Role
from service.domain.checklists import checklists_from
from service.domain.errors import CoordinatesPair, Invalid, RequestingManagerOnly
from service.domain.events import EventType
from service.models import AidRequestCreate, IncidentCreate
from service.persistence.tables import AidRequest, City, Incident


def declare_incident(ctx: CommandContext, body: IncidentCreate) -> Incident:
    """Declare an incident for the caller's city, raising its playbook's requests with it."""
    city_id = require_city(ctx.actor, Role.MANAGER)
    playbook, version_id = find_declared_playbook(ctx, city_id, body)
    incident = plan_incident(ctx, city_id, body, playbook, version_id)
    ctx.session.add(incident)
    ctx.session.flush()
    ctx.emit(
        incident,
        EventType.INCIDENT_DECLARED,
        {"incident": as_json(incident_public(incident))},
        cities=[city_id],
    )
    if playbook is not None:
        chosen = playbook_requests(ctx, playbook, body)
        add_requests(ctx, incident, compute_targets(ctx, incident), chosen)
    return incident


def find_declared_playbook(
    ctx: CommandContext, city_id: int, body: IncidentCreate
) -> tuple[Playbook | None, int | None]:
    """The playbook a declaration names (the city's own, else the stock one) and the
    published version it is word for word, if any; (None, None) without a playbook."""
    if body.playbook is None:
        if body.playbook_requests is not None:
            raise Invalid("playbook_requests go with a playbook")
        return None, None
    own = city_playbook_row(ctx, city_id, body.playbook)
    playbook = playbook_of(ctx, body.playbook, own)
    if playbook is None:
        known = ", ".join(sorted(playbooks_for(ctx, city_id))) or "none"
        raise Invalid(f"unknown playbook '{body.playbook}' (known: {known})")
    return playbook, version_in_use(ctx, own)


def plan_incident(
    ctx: CommandContext,
    city_id: int,
    body: IncidentCreate,
    playbook: Playbook | None,
    playbook_version_id: int | None,
) -> Incident:
    """The incident a declaration writes, not yet added to the session: a dry run reads
    its rings and targets from this same row."""
    city = ctx.session.get(City, city_id)
    assert city is not None
    if (body.lat is None) != (body.lon is None):
        raise CoordinatesPair("give both lat and lon, or neither to use the city's location")
    settings = ctx.settings
    intervals = playbook.escalation.ring_intervals if playbook else settings.default_ring_intervals
    return Incident(
        city_id=city_id,
        incident_type=body.incident_type,
        title=body.title,
        severity=body.severity,
        description=body.description,
        lat=body.lat if body.lat is not None else city.lat,
        lon=body.lon if body.lon is not None else city.lon,
        playbook=body.playbook,
        playbook_version_id=playbook_version_id,
        exercise=body.exercise,
        status=lc.IncidentStatus.ACTIVE.value,
        ring0_radius_km=(
            playbook.escalation.ring0_radius_km if playbook else settings.default_ring0_radius_km
        ),
        ring_intervals_s=[int(i.total_seconds()) for i in intervals],
        claim_acceptance_timeout_s=int(
            (
                playbook.claim_acceptance_timeout
                if playbook
                else settings.default_claim_acceptance_timeout
            ).total_seconds()
        ),
        declared_by_token_id=ctx.actor.token_id,
        declared_at=ctx.now,
        checklists=checklists_from(
            [(c.title, c.items) for c in playbook.checklists] if playbook else []
        ),
    )


def playbook_requests(
    ctx: CommandContext, playbook: Playbook, body: IncidentCreate
) -> list[tuple[AidRequestCreate, lc.RequestKind]]:
    """The requests a playbook raises when declared now: those `body` chose, as adjusted
    (see `service.domain.declaring`), or all of them as written."""
    choices = (
        None
        if body.playbook_requests is None
        else [declaring.Choice(c.index, c.quantity, c.priority) for c in body.playbook_requests]
    )
    written = [(item.quantity, item.priority) for item in playbook.requests]
    requests = []
    for chosen in declaring.choose(written, choices):
        item = playbook.requests[chosen.index]
        create = AidRequestCreate.model_validate(
            {
                "resource": item.resource,
                "quantity": chosen.quantity,
                "priority": chosen.priority,
                "needed_by": ctx.now + item.needed_within,
                "notes": item.notes or "",
            }
        )
        requests.append((create, resource_kind(ctx, item.resource, None)))
    return requests


def close_incident(ctx: CommandContext, incident_id: int) -> Incident:
    """Close an incident; every request still open is cancelled with it."""
    city_id = require_city(ctx.actor, Role.MANAGER)
    visible_incident(ctx.session, ctx.actor, incident_id)
    incident = lock_incident(ctx.session, incident_id)
    if incident.city_id != city_id:
        raise RequestingManagerOnly("only the requesting city's manager can close this incident")
    lc.check_incident_transition(lc.IncidentStatus(incident.status), lc.IncidentStatus.CLOSED)
    open_requests = ctx.session.exec(
        select(AidRequest.id).where(
            col(AidRequest.incident_id) == incident_id,
            col(AidRequest.status).not_in([s.value for s in lc.FINAL_REQUEST_STATUSES]),
        )
    ).all()
    for request_id in open_requests:
        assert request_id is not None
        request = fresh(ctx.session, AidRequest, request_id, "request")
        end_request(ctx, incident, request, lc.RequestStatus.CANCELLED, EventType.REQUEST_CANCELLED)
    incident.status = lc.IncidentStatus.CLOSED.value
    incident.closed_at = ctx.now
    ctx.emit(
        incident,
        EventType.INCIDENT_CLOSED,
        {"incident": as_json(incident_public(incident))},
        cities=[incident.city_id],
    )
    return incident


def acceptance_timeout(incident: Incident) -> timedelta:
    return timedelta(seconds=incident.claim_acceptance_timeout_s)
