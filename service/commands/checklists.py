"""Ticking off an item of an incident's checklists: the incident's row and a
`checklist.ticked` event, under the incident's lock."""

from __future__ import annotations

from service.commands.context import CommandContext, lock_incident, require_city, visible_incident
from service.domain import checklists as rules
from service.domain import lifecycles as lc
from service.domain.actors import Role
from service.domain.errors import Forbidden
from service.domain.events import EventType
from service.models import ChecklistTick
from service.persistence.tables import Incident


def tick_checklist(ctx: CommandContext, incident_id: int, body: ChecklistTick) -> Incident:
    """Tick (or untick) one item, for the requesting city's manager. A tick that changes
    nothing records nothing."""
    city_id = require_city(ctx.actor, Role.MANAGER)
    visible_incident(ctx.session, ctx.actor, incident_id)
    incident = lock_incident(ctx.session, incident_id)
    if incident.city_id != city_id:
        raise Forbidden("only the requesting city's manager ticks off the incident's checklists")
    lc.ensure_incident_active(
        lc.IncidentStatus(incident.status), "tick", "a closed incident's checklists are final"
    )
    changed = rules.tick(
        incident.checklists, body.checklist, body.item, body.done, now=ctx.now, city_id=city_id
    )
    if changed is None:
        return incident
    incident.checklists = changed
    ctx.session.add(incident)
    ctx.emit(
        incident,
        EventType.CHECKLIST_TICKED,
        {
            "checklist": body.checklist,
            "item": body.item,
            "done": body.done,
            "title": changed[body.checklist]["title"],
            "text": changed[body.checklist]["items"][body.item]["text"],
            "checklists": changed,
        },
        cities=[incident.city_id],
    )
    return incident
