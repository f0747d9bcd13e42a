"""Importing from other systems: a CAP alert declares an incident, an EDXL-RM
RequestResource raises a request. Each import is recorded, so a second import of the
same message returns what the first made instead of doing it again."""

from __future__ import annotations

from sqlmodel import col, select

from service.commands.aid_requests import raise_request
from service.commands.context import CommandContext, require_city
from service.commands.incidents import declare_incident
from service.domain import lifecycles as lc
from service.domain.actors import Role
from service.interop.cap import ImportedAlert
from service.interop.edxl_rm import ImportedRequest
from service.models import AidRequestCreate, IncidentCreate
from service.persistence.tables import AidRequest, Incident, InteropImport

CAP = "cap"
EDXL_RM = "edxl-rm"
EDXL_RM_INCIDENT = "edxl-rm-incident"


def _recorded(
    ctx: CommandContext, format_: str, sender: str, identifier: str
) -> InteropImport | None:
    found = ctx.session.exec(
        select(InteropImport).where(
            col(InteropImport.format) == format_,
            col(InteropImport.sender) == sender,
            col(InteropImport.identifier) == identifier,
        )
    ).first()
    return found


def _record(
    ctx: CommandContext,
    format_: str,
    sender: str,
    identifier: str,
    city_id: int,
    incident_id: int,
    request_id: int | None = None,
) -> None:
    ctx.session.add(
        InteropImport(
            format=format_,
            sender=sender,
            identifier=identifier,
            city_id=city_id,
            incident_id=incident_id,
            request_id=request_id,
            created_at=ctx.now,
        )
    )


def import_cap_alert(ctx: CommandContext, alert: ImportedAlert) -> tuple[Incident, bool]:
    """Declare the incident an alert describes for the caller's city; (incident, created)."""
    city_id = require_city(ctx.actor, Role.MANAGER)
    earlier = _recorded(ctx, CAP, alert.sender, alert.identifier)
    if earlier is not None:
        incident = ctx.session.get(Incident, earlier.incident_id)
        assert incident is not None
        return incident, False
    body = IncidentCreate(
        incident_type=alert.incident_type,
        title=alert.title,
        severity=alert.severity,
        description=alert.description,
        lat=alert.lat,
        lon=alert.lon,
        exercise=alert.exercise,
        playbook=alert.incident_type if alert.incident_type in ctx.playbooks else None,
    )
    incident = declare_incident(ctx, body)
    assert incident.id is not None
    _record(ctx, CAP, alert.sender, alert.identifier, city_id, incident.id)
    return incident, True


def import_rm_request(ctx: CommandContext, message: ImportedRequest) -> tuple[AidRequest, bool]:
    """Raise the request a RequestResource asks for on an active incident of the caller's
    city: the one its IncidentID was imported as before, or a new one; (request, created)."""
    city_id = require_city(ctx.actor, Role.MANAGER)
    sender = f"city:{city_id}"
    earlier = _recorded(ctx, EDXL_RM, sender, message.message_id)
    if earlier is not None and earlier.request_id is not None:
        request = ctx.session.get(AidRequest, earlier.request_id)
        assert request is not None
        return request, False
    incident = _incident_for(ctx, city_id, sender, message)
    assert incident.id is not None
    body = AidRequestCreate(
        resource=message.resource,
        quantity=message.quantity,
        priority=message.priority,
        needed_by=message.needed_by if message.needed_by and message.needed_by > ctx.now else None,
        report_to=message.report_to,
        notes=message.notes,
    )
    request = raise_request(ctx, incident.id, body)
    _record(ctx, EDXL_RM, sender, message.message_id, city_id, incident.id, request.id)
    return request, True


def _incident_for(
    ctx: CommandContext, city_id: int, sender: str, message: ImportedRequest
) -> Incident:
    if message.incident_id:
        local_id = _own_incident_id(message.incident_id)
        if local_id is not None:
            own = ctx.session.get(Incident, local_id)
            if own is not None and own.city_id == city_id and own.status == "active":
                return own
        linked = _recorded(ctx, EDXL_RM_INCIDENT, sender, message.incident_id)
        if linked is not None:
            incident = ctx.session.get(Incident, linked.incident_id)
            if incident is not None and incident.status == lc.IncidentStatus.ACTIVE.value:
                return incident
    title = message.incident_description or f"Imported request {message.message_id}"
    incident = declare_incident(
        ctx, IncidentCreate(incident_type="other", title=title[:200], severity="moderate")
    )
    assert incident.id is not None
    if (
        message.incident_id
        and _recorded(ctx, EDXL_RM_INCIDENT, sender, message.incident_id) is None
    ):
        _record(ctx, EDXL_RM_INCIDENT, sender, message.incident_id, city_id, incident.id)
    return incident


def _own_incident_id(external: str) -> int | None:
    """aidmesh's own IncidentID form, `aidmesh-incident-<id>`."""
    prefix = "aidmesh-incident-"
    if external.startswith(prefix) and external[len(prefix) :].isdigit():
        return int(external[len(prefix) :])
    return None
