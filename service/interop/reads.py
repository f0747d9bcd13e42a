"""The reads the interoperability routes need beyond service.queries; every one starts
from what the caller may see through the JSON API (`incident_detail`,
`incident_visibility`), so an export never shows more."""

from __future__ import annotations

from collections.abc import Iterator

from sqlmodel import Session, col, select

from service.commands.context import target_reached
from service.domain.actors import Actor
from service.interop import cap
from service.interop.geojson import Reach
from service.models import CityPublic, EventPublic, IncidentPublic
from service.persistence.tables import AidRequest, City, Event, Incident, RequestTarget
from service.queries import city_public, incident_visibility, stored_events_after

_PAGE = 1000
ALERT_EVENTS = (cap.DECLARED, cap.UPDATED, cap.CLOSED)


def all_events(session: Session, incident_id: int) -> Iterator[EventPublic]:
    """Every event of an incident in seq order (call after a visibility check)."""
    after = 0
    while True:
        page = stored_events_after(session, incident_id, after, _PAGE)
        for event in page:
            yield EventPublic.model_validate(event)
        if len(page) < _PAGE:
            return
        after = page[-1].seq


def alert_events(session: Session, incident_ids: list[int]) -> dict[int, list[EventPublic]]:
    """The events that make CAP alerts, per incident, in seq order."""
    found: dict[int, list[EventPublic]] = {i: [] for i in incident_ids}
    if not incident_ids:
        return found
    rows = session.exec(
        select(Event)
        .where(col(Event.incident_id).in_(incident_ids), col(Event.type).in_(ALERT_EVENTS))
        .order_by(col(Event.incident_id), col(Event.seq))
    ).all()
    for row in rows:
        found[row.incident_id].append(EventPublic.model_validate(row))
    return found


def visible_incidents(session: Session, actor: Actor, limit: int) -> list[IncidentPublic]:
    """The incidents `actor` may see, most recently declared first."""
    rows = session.exec(
        select(Incident)
        .where(incident_visibility(actor))
        .order_by(col(Incident.declared_at).desc(), col(Incident.id).desc())
        .limit(limit)
    ).all()
    return [IncidentPublic.model_validate(r) for r in rows]


def cities(session: Session) -> dict[int, CityPublic]:
    """Every city (any token may list them through GET /cities)."""
    rows = session.exec(select(City).order_by(col(City.id))).all()
    return {c.id: city_public(session, c) for c in rows if c.id is not None}


def reach(session: Session, incident_id: int) -> list[Reach]:
    """The cities each request of the incident reaches at its current ring."""
    rows = session.exec(
        select(RequestTarget)
        .join(AidRequest, col(AidRequest.id) == col(RequestTarget.request_id))
        .where(
            col(AidRequest.incident_id) == incident_id,
            target_reached(),
        )
        .order_by(
            col(RequestTarget.request_id), col(RequestTarget.ring), col(RequestTarget.city_id)
        )
    ).all()
    return [Reach(t.request_id, t.city_id, t.ring, t.distance_km) for t in rows]


def ring0_radius_km(session: Session, incident_id: int) -> float:
    incident = session.get(Incident, incident_id)
    return incident.ring0_radius_km if incident is not None else 50.0
