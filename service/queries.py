"""Reads: what each caller may see, as pages of public models. No writes here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, or_
from sqlalchemy.sql import Select
from sqlmodel import Session, col, select

from service.commands.context import target_reached, visible_incident
from service.commands.presenters import claim_public, incident_public, note_public, request_public
from service.domain import lifecycles as lc
from service.domain.actors import Actor
from service.domain.errors import Forbidden, NotFound
from service.domain.lifecycles import PRIORITY_ORDER, priority_rank
from service.models import (
    AidRequestPublic,
    CityPublic,
    ClaimPublic,
    EventPage,
    EventPublic,
    IncidentDetail,
    IncidentPublic,
    NetworkPublic,
    NotePublic,
    Page,
    TokenPublic,
)
from service.persistence.tables import (
    AidRequest,
    ApiToken,
    City,
    Claim,
    Event,
    Incident,
    Network,
    NetworkMembership,
    Note,
    RequestTarget,
)

PRIORITY_RANK = case(
    {p: priority_rank(p) for p in PRIORITY_ORDER},
    value=col(AidRequest.priority),
    else_=priority_rank(""),
)


def _page(session: Session, query: Select[Any], limit: int, offset: int) -> tuple[list[Any], int]:
    total = session.exec(select(func.count()).select_from(query.order_by(None).subquery())).one()
    rows = session.exec(query.limit(limit).offset(offset)).all()  # type: ignore[call-overload]
    return list(rows), int(total)


def _make_page(items: list[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    next_offset = offset + len(items) if offset + len(items) < total else None
    return {
        "data": items,
        "count": total,
        "limit": limit,
        "offset": offset,
        "next_offset": next_offset,
    }


def incident_visibility(actor: Actor) -> Any:
    """A WHERE clause: the incidents `actor` may see (see `can_see_incident`)."""
    if actor.is_admin:
        return True
    my_networks = select(NetworkMembership.network_id).where(
        col(NetworkMembership.city_id) == actor.city_id
    )
    network_peers = select(NetworkMembership.city_id).where(
        col(NetworkMembership.network_id).in_(my_networks)
    )
    reached = (
        select(AidRequest.incident_id)
        .join(RequestTarget, col(RequestTarget.request_id) == col(AidRequest.id))
        .where(
            col(RequestTarget.city_id) == actor.city_id,
            target_reached(),
        )
    )
    return or_(
        col(Incident.city_id) == actor.city_id,
        col(Incident.city_id).in_(network_peers),
        col(Incident.id).in_(reached),
    )


def list_incidents(
    session: Session,
    actor: Actor,
    *,
    status: str | None,
    city_id: int | None,
    incident_type: str | None,
    exercise: bool | None,
    limit: int,
    offset: int,
) -> Page[IncidentPublic]:
    query = select(Incident).where(incident_visibility(actor))
    if status is not None:
        query = query.where(col(Incident.status) == status)
    if city_id is not None:
        query = query.where(col(Incident.city_id) == city_id)
    if incident_type is not None:
        query = query.where(col(Incident.incident_type) == incident_type)
    if exercise is not None:
        query = query.where(col(Incident.exercise) == exercise)
    query = query.order_by(col(Incident.declared_at).desc(), col(Incident.id).desc())
    rows, total = _page(session, query, limit, offset)
    items = [incident_public(i) for i in rows]
    return Page[IncidentPublic].model_validate(_make_page(items, total, limit, offset))


def incident_detail(session: Session, actor: Actor, incident_id: int) -> IncidentDetail:
    incident = visible_incident(session, actor, incident_id)
    requests = session.exec(
        select(AidRequest)
        .where(col(AidRequest.incident_id) == incident_id)
        .order_by(PRIORITY_RANK, col(AidRequest.id))
    ).all()
    claims = session.exec(
        select(Claim).where(col(Claim.incident_id) == incident_id).order_by(col(Claim.id))
    ).all()
    return IncidentDetail.model_validate(
        {
            **incident_public(incident).model_dump(),
            "requests": [request_public(r) for r in requests],
            "claims": [claim_public(c) for c in claims],
            "checklists": incident.checklists,
        }
    )


def inbox(
    session: Session,
    actor: Actor,
    *,
    status: str | None,
    incident_id: int | None,
    kind: str | None,
    limit: int,
    offset: int,
) -> Page[AidRequestPublic]:
    """Requests aimed at the caller's city at their current ring, most urgent and newest first."""
    if actor.city_id is None:
        raise Forbidden("the inbox belongs to a city: use a city's token")
    query = (
        select(AidRequest)
        .join(RequestTarget, col(RequestTarget.request_id) == col(AidRequest.id))
        .where(
            col(RequestTarget.city_id) == actor.city_id,
            target_reached(),
        )
    )
    if status is not None:
        query = query.where(col(AidRequest.status) == status)
    else:
        query = query.where(
            col(AidRequest.status).not_in([s.value for s in lc.FINAL_REQUEST_STATUSES])
        )
    if incident_id is not None:
        query = query.where(col(AidRequest.incident_id) == incident_id)
    if kind is not None:
        query = query.where(col(AidRequest.kind) == kind)
    query = query.order_by(
        PRIORITY_RANK, col(AidRequest.created_at).desc(), col(AidRequest.id).desc()
    )
    rows, total = _page(session, query, limit, offset)
    items = [request_public(r) for r in rows]
    return Page[AidRequestPublic].model_validate(_make_page(items, total, limit, offset))


def request_detail(session: Session, actor: Actor, request_id: int) -> AidRequestPublic:
    request = session.get(AidRequest, request_id)
    missing = f"request {request_id} not found"
    if request is None:
        raise NotFound(missing)
    visible_incident(session, actor, request.incident_id, missing)
    return request_public(request)


def request_claims(
    session: Session, actor: Actor, request_id: int, limit: int, offset: int
) -> Page[ClaimPublic]:
    request_detail(session, actor, request_id)
    query = select(Claim).where(col(Claim.request_id) == request_id).order_by(col(Claim.id))
    rows, total = _page(session, query, limit, offset)
    items = [claim_public(c) for c in rows]
    return Page[ClaimPublic].model_validate(_make_page(items, total, limit, offset))


def claim_detail(session: Session, actor: Actor, claim_id: int) -> ClaimPublic:
    claim = session.get(Claim, claim_id)
    missing = f"claim {claim_id} not found"
    if claim is None:
        raise NotFound(missing)
    visible_incident(session, actor, claim.incident_id, missing)
    return claim_public(claim)


def stored_events_after(session: Session, incident_id: int, after: int, limit: int) -> list[Event]:
    """The incident's events with seq > after, in seq order, at most `limit` (no access check)."""
    return list(
        session.exec(
            select(Event)
            .where(col(Event.incident_id) == incident_id, col(Event.seq) > after)
            .order_by(col(Event.seq))
            .limit(limit)
        ).all()
    )


def events_after(
    session: Session, actor: Actor, incident_id: int, after: int, limit: int
) -> EventPage:
    incident = visible_incident(session, actor, incident_id)
    data = [
        EventPublic.model_validate(e)
        for e in stored_events_after(session, incident_id, after, limit)
    ]
    last = data[-1].seq if data else after
    return EventPage(
        data=data,
        last_seq=incident.last_seq,
        next_after=last if last < incident.last_seq else None,
    )


def list_networks(session: Session, limit: int, offset: int) -> Page[NetworkPublic]:
    rows, total = _page(session, select(Network).order_by(col(Network.id)), limit, offset)
    members = _members(session)
    items = [
        NetworkPublic.model_validate({**n.model_dump(), "city_ids": members.get(n.id, [])})
        for n in rows
    ]
    return Page[NetworkPublic].model_validate(_make_page(items, total, limit, offset))


def network_detail(session: Session, network_id: int) -> NetworkPublic:
    network = session.get(Network, network_id)
    if network is None:
        raise NotFound(f"network {network_id} not found")
    city_ids = session.exec(
        select(NetworkMembership.city_id)
        .where(col(NetworkMembership.network_id) == network_id)
        .order_by(col(NetworkMembership.city_id))
    ).all()
    return NetworkPublic.model_validate({**network.model_dump(), "city_ids": list(city_ids)})


def _members(session: Session) -> dict[int | None, list[int]]:
    found: dict[int | None, list[int]] = {}
    for m in session.exec(select(NetworkMembership).order_by(col(NetworkMembership.city_id))).all():
        found.setdefault(m.network_id, []).append(m.city_id)
    return found


def city_public(session: Session, city: City) -> CityPublic:
    network_ids = session.exec(
        select(NetworkMembership.network_id)
        .where(col(NetworkMembership.city_id) == city.id)
        .order_by(col(NetworkMembership.network_id))
    ).all()
    return CityPublic.model_validate({**city.model_dump(), "network_ids": list(network_ids)})


def list_cities(session: Session, limit: int, offset: int) -> Page[CityPublic]:
    rows, total = _page(session, select(City).order_by(col(City.id)), limit, offset)
    items = [city_public(session, c) for c in rows]
    return Page[CityPublic].model_validate(_make_page(items, total, limit, offset))


def city_detail(session: Session, city_id: int) -> CityPublic:
    city = session.get(City, city_id)
    if city is None:
        raise NotFound(f"city {city_id} not found")
    return city_public(session, city)


def list_tokens(
    session: Session, limit: int, offset: int, city_id: int | None = None
) -> Page[TokenPublic]:
    """Tokens, oldest first (of one city if `city_id`); never their secrets."""
    query = select(ApiToken).order_by(col(ApiToken.id))
    if city_id is not None:
        query = query.where(col(ApiToken.city_id) == city_id)
    rows, total = _page(session, query, limit, offset)
    items = [TokenPublic.model_validate(t) for t in rows]
    return Page[TokenPublic].model_validate(_make_page(items, total, limit, offset))


def request_notes(
    session: Session, actor: Actor, request_id: int, limit: int, offset: int
) -> Page[NotePublic]:
    """A request's thread, its claims' notes included, oldest first."""
    request_detail(session, actor, request_id)
    query = select(Note).where(col(Note.request_id) == request_id).order_by(col(Note.id))
    return _notes_page(session, query, limit, offset)


def claim_notes(
    session: Session, actor: Actor, claim_id: int, limit: int, offset: int
) -> Page[NotePublic]:
    """A claim's thread, oldest first."""
    claim_detail(session, actor, claim_id)
    query = select(Note).where(col(Note.claim_id) == claim_id).order_by(col(Note.id))
    return _notes_page(session, query, limit, offset)


def _notes_page(session: Session, query: Select[Any], limit: int, offset: int) -> Page[NotePublic]:
    rows, total = _page(session, query, limit, offset)
    items = [note_public(n) for n in rows]
    return Page[NotePublic].model_validate(_make_page(items, total, limit, offset))
