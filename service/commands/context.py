"""What every command gets: the session of its transaction, the actor, the clock, the catalogue.

`emit` appends an event with the incident's next gap-free seq; the incident row
must be locked first (`lock_incident`) so that seq order is commit order.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, Select, exists, union
from sqlmodel import Session, col, select

from playbooks import Catalogue, Playbook
from service.domain import claims as claim_rules
from service.domain.actors import Actor, Role, role_refused
from service.domain.errors import NotFound
from service.domain.events import EventType
from service.persistence.tables import (
    AidRequest,
    Claim,
    Event,
    Incident,
    NetworkMembership,
    RequestTarget,
)
from service.settings import Settings

RowT = TypeVar("RowT", AidRequest, Claim, Incident)
ChildT = TypeVar("ChildT", AidRequest, Claim)


@dataclass
class CommandContext:
    session: Session
    actor: Actor
    now: datetime
    settings: Settings
    catalogue: Catalogue
    playbooks: Mapping[str, Playbook]
    events: list[Event] = field(default_factory=list)

    def emit(
        self,
        incident: Incident,
        type_: EventType,
        data: dict[str, Any],
        *,
        cities: list[int],
        viewers: list[int] | None = None,
    ) -> Event:
        """Record one event. `cities` are the inboxes it concerns; every city that
        can see the incident is recorded as a viewer, for the live board: `viewers`
        when the caller has just read them (`incident_viewers`, after its last change
        of who can see the incident), else read here."""
        assert incident.id is not None
        if viewers is None:
            self.session.flush()
            viewers = incident_viewers(self.session, incident)
        incident.last_seq += 1
        event = Event(
            event_id=str(uuid.uuid4()),
            incident_id=incident.id,
            seq=incident.last_seq,
            type=type_.value,
            occurred_at=self.now,
            actor_token_id=self.actor.token_id,
            actor_city_id=self.actor.city_id,
            actor_role=self.actor.event_role,
            actor_user_id=self.actor.user_id,
            actor_name=self.actor.display_name,
            data=data,
            audience={
                "cities": sorted(set(cities)),
                "viewers": viewers,
            },
        )
        self.session.add(incident)
        self.session.add(event)
        self.events.append(event)
        return event


def incident_viewers(session: Session, incident: Incident) -> list[int]:
    """Every city that may see `incident` now (see `can_see_incident`), admins aside:
    its networks' cities and the cities its requests reach, in one statement."""
    own_networks = select(NetworkMembership.network_id).where(
        col(NetworkMembership.city_id) == incident.city_id
    )
    peers: Select[tuple[int]] = select(col(NetworkMembership.city_id).label("city_id")).where(
        col(NetworkMembership.network_id).in_(own_networks)
    )
    reached: Select[tuple[int]] = (
        select(col(RequestTarget.city_id).label("city_id"))
        .join(AidRequest, col(AidRequest.id) == col(RequestTarget.request_id))
        .where(
            col(AidRequest.incident_id) == incident.id,
            target_reached(),
        )
    )
    rows = session.execute(union(peers, reached)).scalars()
    return sorted({incident.city_id, *rows})


def lock_incident(session: Session, incident_id: int) -> Incident:
    """Load the incident under its row lock (FOR UPDATE; SQLite's write lock is already held)."""
    return _lock_incident_where(session, incident_id, f"incident {incident_id} not found")


def locked(session: Session, model: type[ChildT], id_: int, what: str) -> tuple[Incident, ChildT]:
    """A request's or claim's incident under its row lock (found and locked in one
    statement), and the row itself read after the lock."""
    of = select(model.incident_id).where(model.id == id_).scalar_subquery()
    incident = _lock_incident_where(session, of, f"{what} {id_} not found")
    return incident, fresh(session, model, id_, what)


def _lock_incident_where(session: Session, incident_id: Any, not_found: str) -> Incident:
    incident = session.exec(
        select(Incident)
        .where(col(Incident.id) == incident_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if incident is None:
        raise NotFound(not_found)
    assert isinstance(incident, Incident)
    return incident


def fresh(session: Session, model: type[RowT], id_: int, what: str) -> RowT:
    """Re-read a row inside the transaction (after the incident lock), or NotFound."""
    row = session.exec(
        select(model).where(model.id == id_).execution_options(populate_existing=True)
    ).one_or_none()
    if row is None:
        raise NotFound(f"{what} {id_} not found")
    return row


def require_city(actor: Actor, *roles: Role) -> int:
    if actor.role not in roles or actor.city_id is None:
        raise role_refused(actor, *roles)
    return actor.city_id


def can_see_incident(session: Session, actor: Actor, incident: Incident) -> bool:
    """Admins see all; a city sees its own incidents, its networks' incidents
    and those whose requests reach it."""
    if actor.is_admin:
        return True
    if actor.city_id is None:
        return False
    if incident.city_id == actor.city_id:
        return True
    mine = NetworkMembership.__table__.alias("mine")  # type: ignore[attr-defined]
    theirs = NetworkMembership.__table__.alias("theirs")  # type: ignore[attr-defined]
    shares_network = session.exec(
        select(
            exists().where(
                mine.c.city_id == actor.city_id,
                theirs.c.city_id == incident.city_id,
                mine.c.network_id == theirs.c.network_id,
            )
        )
    ).one()
    if shares_network:
        return True
    reached = session.exec(
        select(
            exists().where(
                col(RequestTarget.city_id) == actor.city_id,
                col(RequestTarget.request_id) == col(AidRequest.id),
                col(AidRequest.incident_id) == incident.id,
                target_reached(),
            )
        )
    ).one()
    return bool(reached)


def visible_incident(
    session: Session, actor: Actor, incident_id: int, missing: str | None = None
) -> Incident:
    """The incident if `actor` may see it, else NotFound. A request or claim of a hidden
    incident passes `missing`, what its own absence says ("request 7 not found"), so that
    a hidden object answers exactly as a missing one and its incident stays unnamed."""
    incident = session.get(Incident, incident_id)
    if incident is None or not can_see_incident(session, actor, incident):
        raise NotFound(missing or f"incident {incident_id} not found")
    return incident


def target_rings(session: Session, request_id: int) -> dict[int, int]:
    """The ring at which the request reaches each of its target cities."""
    rows = session.exec(
        select(RequestTarget.city_id, RequestTarget.ring).where(
            col(RequestTarget.request_id) == request_id
        )
    )
    return dict(rows.all())


class Reaching(Protocol):
    """A request as far as its audience goes (a row or its public model)."""

    @property
    def city_id(self) -> int: ...
    @property
    def ring(self) -> int: ...


def audience_of(request: Reaching, rings: Mapping[int, int]) -> list[int]:
    """The cities the request currently reaches, plus the requesting city."""
    return claim_rules.audience(request.city_id, request.ring, rings)


def target_reached(request_ring: ColumnElement[int] | int | None = None) -> ColumnElement[bool]:
    """`claim_rules.ring_reaches` as SQL: a request at `request_ring` (by default the
    current ring of the `AidRequest` the query joins) reaches the `RequestTarget`'s city."""
    ring = col(AidRequest.ring) if request_ring is None else request_ring
    return col(RequestTarget.ring) <= ring


def current_audience(session: Session, request: AidRequest) -> list[int]:
    """The cities a request currently reaches, plus the requesting city."""
    return audience_of(request, target_rings(session, request.id or 0))


def claim_cities(session: Session, request_id: int) -> set[int]:
    rows = session.exec(select(Claim.city_id).where(col(Claim.request_id) == request_id))
    return set(rows)


def body_fingerprint(fields: Mapping[str, Any]) -> str:
    """What an idempotency key is checked against: a digest of the command's fields in a
    canonical form. A key sent again with another body is refused, the same body replays."""
    canonical = json.dumps(dict(fields), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()
