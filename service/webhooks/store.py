"""The delivery worker's reads and writes: leases, due work, and the outcome of a batch.

Deliveries are read from the events table through a durable cursor per endpoint and
incident (`webhook_cursors`): the events table is already the outbox, written in the
transaction of each command and by the PostgreSQL claim path alike, so delivering costs
those paths nothing. A cursor moves only after the receiver acknowledged (or the event
was given up), in one transaction with the attempts that moved it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from service.models import EventPublic
from service.persistence.db import Database
from service.persistence.tables import (
    Event,
    Incident,
    WebhookAttempt,
    WebhookCursor,
    WebhookEndpoint,
    WebhookQueued,
)

E = WebhookEndpoint.__table__  # type: ignore[attr-defined]
C = WebhookCursor.__table__  # type: ignore[attr-defined]
Q = WebhookQueued.__table__  # type: ignore[attr-defined]
A = WebhookAttempt.__table__  # type: ignore[attr-defined]
EV = Event.__table__  # type: ignore[attr-defined]
I = Incident.__table__  # type: ignore[attr-defined]  # noqa: E741


@dataclass(frozen=True, slots=True)
class EndpointView:
    """What the worker needs of an endpoint, read when its lease is taken or renewed."""

    id: int
    city_id: int
    url: str
    event_types: tuple[str, ...]
    secrets: tuple[str, ...]  # the current one first
    last_success_at: datetime | None


@dataclass(slots=True)
class Head:
    """One incident's undelivered events for an endpoint, from its cursor on."""

    incident_id: int
    cursor: int
    failures: int
    failing_since: datetime | None
    next_attempt_at: datetime | None
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Backlog:
    heads: list[Head]
    depth: int  # events past the cursors (an upper bound: filters skip some)
    oldest_at: datetime | None  # the oldest undelivered event's time


@dataclass(slots=True)
class QueuedItem:
    id: int
    kind: str
    event_id: str
    body: dict[str, Any] | None
    failures: int
    failing_since: datetime | None


def take_leases(db: Database, owner: str, now: datetime, until: datetime, limit: int) -> list[int]:
    """Lease up to `limit` active endpoints nobody holds (or whose lease ran out).

    The condition is checked again by the UPDATE itself, under the row's lock, so two
    replicas racing for one endpoint cannot both win it."""
    if limit <= 0:
        return []
    free = and_(E.c.status == "active", or_(E.c.leased_by.is_(None), E.c.lease_until < now))
    candidates = select(E.c.id).where(free).order_by(E.c.id).limit(limit)
    with db.write_connection() as conn:
        ids = [row[0] for row in conn.execute(candidates)]
        if not ids:
            return []
        won = conn.execute(
            update(E)
            .where(E.c.id.in_(ids), free)
            .values(leased_by=owner, lease_until=until)
            .returning(E.c.id)
        )
        return sorted(row[0] for row in won)


def renew_lease(
    db: Database, endpoint_id: int, owner: str, now: datetime, until: datetime
) -> EndpointView | None:
    """Keep the lease and read the endpoint; None when it is no longer ours or not active."""
    with db.write_connection() as conn:
        row = conn.execute(
            update(E)
            .where(E.c.id == endpoint_id, E.c.leased_by == owner, E.c.status == "active")
            .values(lease_until=until)
            .returning(
                E.c.id,
                E.c.city_id,
                E.c.url,
                E.c.event_types,
                E.c.secret,
                E.c.previous_secret,
                E.c.previous_secret_until,
                E.c.last_success_at,
            )
        ).first()
    if row is None:
        return None
    keys = [row.secret]
    if row.previous_secret and row.previous_secret_until and row.previous_secret_until > now:
        keys.append(row.previous_secret)
    return EndpointView(
        row.id,
        row.city_id,
        row.url,
        tuple(row.event_types or ()),
        tuple(keys),
        row.last_success_at,
    )


def release_lease(db: Database, endpoint_id: int, owner: str) -> None:
    with db.write_connection() as conn:
        conn.execute(
            update(E)
            .where(E.c.id == endpoint_id, E.c.leased_by == owner)
            .values(leased_by=None, lease_until=None)
        )


def _insert_ignore(db: Database) -> Any:
    return sqlite.insert if db.is_sqlite else postgresql.insert


def backlog(db: Database, endpoint_id: int, per_incident: int, max_incidents: int) -> Backlog:
    """The incidents with events past the endpoint's cursor, with up to `per_incident` of
    their next events each. An incident without a cursor (declared after the endpoint was
    registered) gets one at seq 0 first."""
    with db.write_connection() as conn:
        missing = select(literal(endpoint_id), I.c.id, literal(0), literal(0)).where(
            ~select(C.c.incident_id)
            .where(C.c.endpoint_id == endpoint_id, C.c.incident_id == I.c.id)
            .exists()
        )
        conn.execute(
            _insert_ignore(db)(C)
            .from_select(["endpoint_id", "incident_id", "seq", "failures"], missing)
            .on_conflict_do_nothing()
        )
        behind = conn.execute(
            select(
                C.c.incident_id,
                C.c.seq,
                C.c.failures,
                C.c.failing_since,
                C.c.next_attempt_at,
                I.c.last_seq,
            )
            .join(I, I.c.id == C.c.incident_id)
            .where(C.c.endpoint_id == endpoint_id, I.c.last_seq > C.c.seq)
            .order_by(C.c.next_attempt_at.is_not(None), C.c.incident_id)
            .limit(max_incidents)
        ).all()
        heads = {
            r.incident_id: Head(
                r.incident_id, r.seq, r.failures, r.failing_since, r.next_attempt_at
            )
            for r in behind
        }
        depth = sum(r.last_seq - r.seq for r in behind)
        if not heads:
            return Backlog([], 0, None)
        ranked = (
            select(
                EV,
                func.row_number()
                .over(partition_by=EV.c.incident_id, order_by=EV.c.seq)
                .label("rank"),
            )
            .join(C, and_(C.c.incident_id == EV.c.incident_id, C.c.endpoint_id == endpoint_id))
            .where(EV.c.incident_id.in_(list(heads)), EV.c.seq > C.c.seq)
            .subquery()
        )
        rows = (
            conn.execute(
                select(ranked)
                .where(ranked.c.rank <= per_incident)
                .order_by(ranked.c.incident_id, ranked.c.seq)
            )
            .mappings()
            .all()
        )
    oldest: datetime | None = None
    for row in rows:
        event = EventPublic.model_validate(dict(row)).model_dump(mode="json")
        heads[row["incident_id"]].events.append(event)
        if oldest is None or row["occurred_at"] < oldest:
            oldest = row["occurred_at"]
    return Backlog([h for h in heads.values() if h.events], depth, oldest)


def due_queue(db: Database, endpoint_id: int, now: datetime, limit: int) -> list[QueuedItem]:
    with db.engine.begin() as conn:
        rows = conn.execute(
            select(Q)
            .where(Q.c.endpoint_id == endpoint_id, Q.c.next_attempt_at <= now)
            .order_by(Q.c.id)
            .limit(limit)
        ).all()
    return [QueuedItem(r.id, r.kind, r.event_id, r.body, r.failures, r.failing_since) for r in rows]


def queued_event(db: Database, event_id: str) -> dict[str, Any] | None:
    with db.engine.begin() as conn:
        row = conn.execute(select(EV).where(EV.c.event_id == event_id)).mappings().first()
    return EventPublic.model_validate(dict(row)).model_dump(mode="json") if row else None


@dataclass(slots=True)
class Outcomes:
    """What a batch did, written in one transaction."""

    attempts: list[dict[str, Any]] = field(default_factory=list)
    # incident id -> cursor values (seq only ever moves forward)
    cursors: dict[int, dict[str, Any]] = field(default_factory=dict)
    queue_done: list[int] = field(default_factory=list)
    queue_retry: dict[int, dict[str, Any]] = field(default_factory=dict)
    succeeded_at: datetime | None = None
    failed_at: datetime | None = None
    disable: str | None = None

    def __bool__(self) -> bool:
        return bool(self.attempts or self.cursors or self.queue_done or self.queue_retry)


def record(db: Database, endpoint_id: int, owner: str, now: datetime, done: Outcomes) -> None:
    with db.write_connection() as conn:
        if done.attempts:
            conn.execute(insert(A), done.attempts)
        for incident_id, values in done.cursors.items():
            seq = values.pop("seq", None)
            changes: dict[str, Any] = dict(values)
            if seq is not None:
                # Monotone: a replica whose lease ran out meanwhile never moves a cursor back.
                changes["seq"] = (
                    func.max(C.c.seq, seq) if db.is_sqlite else func.greatest(C.c.seq, seq)
                )
            conn.execute(
                update(C)
                .where(C.c.endpoint_id == endpoint_id, C.c.incident_id == incident_id)
                .values(**changes)
            )
        if done.queue_done:
            conn.execute(Q.delete().where(Q.c.id.in_(done.queue_done)))
        for queued_id, values in done.queue_retry.items():
            conn.execute(update(Q).where(Q.c.id == queued_id).values(**values))
        endpoint: dict[str, Any] = {}
        if done.succeeded_at is not None:
            endpoint["last_success_at"] = done.succeeded_at
        if done.failed_at is not None:
            endpoint["last_failure_at"] = done.failed_at
        if done.disable is not None:
            endpoint.update(
                status="disabled",
                status_reason=done.disable,
                updated_at=now,
                leased_by=None,
                lease_until=None,
            )
        if endpoint:
            conn.execute(update(E).where(E.c.id == endpoint_id).values(**endpoint))
