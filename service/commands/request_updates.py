"""Editing a request as the situation develops: quantity, priority, needed-by, report-to."""

from __future__ import annotations

import logging

from pydantic_core import to_jsonable_python
from sqlmodel import Session

from service.commands.context import (
    CommandContext,
    claim_cities,
    current_audience,
    locked,
    visible_incident,
)
from service.commands.presenters import as_json, request_public
from service.domain import lifecycles as lc
from service.domain.actors import Role, role_refused
from service.domain.errors import NotFound, RequestingManagerOnly
from service.domain.events import EventType
from service.domain.incident_updates import FieldChange
from service.domain.request_updates import EDITABLE_FIELDS, request_changes, status_after_edit
from service.models import AidRequestUpdate
from service.persistence.tables import AidRequest

log = logging.getLogger(__name__)


def update_request(ctx: CommandContext, request_id: int, body: AidRequestUpdate) -> AidRequest:
    """Change what `body` gives; one `request.updated` event lists each change, old and
    new, and carries the request as it now is. An update that changes nothing records
    nothing; a quantity that now equals what was delivered fulfils the request."""
    actor = ctx.actor
    if actor.role not in (Role.MANAGER, Role.ADMIN) or (
        actor.role is Role.MANAGER and actor.city_id is None
    ):
        raise role_refused(actor, Role.MANAGER, Role.ADMIN)
    _ensure_visible(ctx.session, ctx, request_id)
    incident, request = locked(ctx.session, AidRequest, request_id, "request")
    if not actor.is_admin and request.city_id != actor.city_id:
        raise RequestingManagerOnly("only the requesting city's manager can edit this request")
    lc.ensure_incident_active(lc.IncidentStatus(incident.status), "edit a request")
    before = lc.RequestStatus(request.status)
    current = {name: getattr(request, name) for name in EDITABLE_FIELDS}
    changes = request_changes(
        before, current, body.asked(), claimed_quantity=request.claimed_quantity, now=ctx.now
    )
    if not changes:
        return request
    for name, change in changes.items():
        setattr(request, name, change.new)
    after = status_after_edit(
        before, request.quantity, request.claimed_quantity, request.delivered_quantity
    )
    request.status = after.value
    if after is lc.RequestStatus.FULFILLED:
        request.next_escalation_at = None
    request.updated_at = ctx.now
    ctx.session.add(request)
    ctx.session.flush()
    audience = sorted(
        set(current_audience(ctx.session, request)) | claim_cities(ctx.session, request.id or 0)
    )
    request_data = {"request": as_json(request_public(request))}
    ctx.emit(
        incident,
        EventType.REQUEST_UPDATED,
        {**request_data, "changes": {name: _as_json(c) for name, c in changes.items()}},
        cities=audience,
    )
    if after is lc.RequestStatus.FULFILLED and before is not lc.RequestStatus.FULFILLED:
        ctx.emit(incident, EventType.REQUEST_FULFILLED, request_data, cities=audience)
    log.info("request %d updated: %s", request_id, ", ".join(changes))
    return request


def _ensure_visible(session: Session, ctx: CommandContext, request_id: int) -> None:
    """A request of an incident the caller cannot see answers as a missing one."""
    request = session.get(AidRequest, request_id)
    missing = f"request {request_id} not found"
    if request is None:
        raise NotFound(missing)
    visible_incident(session, ctx.actor, request.incident_id, missing)


def _as_json(change: FieldChange) -> dict[str, object]:
    # Times written as the request itself is (RFC 3339, UTC), not as Python prints them.
    data: dict[str, object] = to_jsonable_python(change.as_json())
    return data
