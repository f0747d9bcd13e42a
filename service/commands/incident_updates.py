"""Updating an incident as the situation develops: severity, title, description, location."""

from __future__ import annotations

import logging

from service.commands.context import CommandContext, lock_incident, visible_incident
from service.commands.presenters import as_json, incident_public
from service.domain import lifecycles as lc
from service.domain.actors import Role, role_refused
from service.domain.errors import Forbidden
from service.domain.events import EventType
from service.domain.incident_updates import EDITABLE_FIELDS, FIXED_FIELDS, incident_changes
from service.models import IncidentUpdate
from service.persistence.tables import Incident

log = logging.getLogger(__name__)


def update_incident(ctx: CommandContext, incident_id: int, body: IncidentUpdate) -> Incident:
    """Change what `body` gives; one `incident.updated` event lists each change, old and
    new. An update that changes nothing records nothing."""
    actor = ctx.actor
    if actor.role not in (Role.MANAGER, Role.ADMIN) or (
        actor.role is Role.MANAGER and actor.city_id is None
    ):
        raise role_refused(actor, Role.MANAGER, Role.ADMIN)
    visible_incident(ctx.session, actor, incident_id)
    incident = lock_incident(ctx.session, incident_id)
    if not actor.is_admin and incident.city_id != actor.city_id:
        raise Forbidden("only the requesting city's manager can update this incident")
    current = {name: getattr(incident, name) for name in (*EDITABLE_FIELDS, *FIXED_FIELDS)}
    changes = incident_changes(lc.IncidentStatus(incident.status), current, body.asked())
    if not changes:
        return incident
    for name, change in changes.items():
        setattr(incident, name, change.new)
    ctx.emit(
        incident,
        EventType.INCIDENT_UPDATED,
        {
            "incident": as_json(incident_public(incident)),
            "changes": {name: change.as_json() for name, change in changes.items()},
        },
        cities=[incident.city_id],
    )
    log.info("incident %d updated: %s", incident_id, ", ".join(changes))
    return incident
