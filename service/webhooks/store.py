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

from sqlalchemy import and_, bindparam, func, insert, literal, or_, select, true, union_all, update
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


def renew_leases(
    db: Database, endpoint_ids: list[int], owner: str, now: datetime, until: datetime
) -> dict[int, EndpointView]:
    """Keep the leases and read the endpoints, in one statement for all of them; an
    endpoint missing from the answer is no longer ours or no longer active."""
    with db.write_connection() as conn:
        # Lock in id order, as every writer of these rows does (see record_all).
        conn.execute(
            select(E.c.id).where(E.c.id.in_(endpoint_ids)).order_by(E.c.id).with_for_update()
        )
        rows = conn.execute(
            update(E)
            .where(E.c.id.in_(endpoint_ids), E.c.leased_by == owner, E.c.status == "active")
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
        ).all()
    views = {}
    for row in rows:
        keys = [row.secret]
        if row.previous_secret and row.previous_secret_until and row.previous_secret_until > now:
            keys.append(row.previous_secret)
        views[row.id] = EndpointView(
            row.id,
            row.city_id,
            row.url,
            tuple(row.event_types or ()),
            tuple(keys),
            row.last_success_at,
        )
    return views


def release_lease(db: Database, endpoint_id: int, owner: str) -> None:
    with db.write_connection() as conn:
        conn.execute(
            update(E)
            .where(E.c.id == endpoint_id, E.c.leased_by == owner)
            .values(leased_by=None, lease_until=None)
        )


def _insert_ignore(db: Database) -> Any:
    return sqlite.insert if db.is_sqlite else postgresql.insert


def backlogs(
    db: Database, endpoint_ids: list[int], per_incident: int, max_incidents: int
) -> dict[int, Backlog]:
    """For each endpoint, the incidents with events past its cursor, with up to
    `per_incident` of their next events each. An incident without a cursor (declared
    after the endpoint was registered) gets one at seq 0 first.

    One transaction for all the endpoints: they usually stand at the same cursor of the
    same incidents, so each event is read and shaped once however many endpoints take it.
    """
    ids = sorted(set(endpoint_ids))
    with db.write_connection() as conn:
        missing = (
            select(E.c.id, I.c.id, literal(0), literal(0))
            .select_from(E)
            .join(I, true())
            .where(
                E.c.id.in_(ids),
                ~select(C.c.incident_id)
                .where(C.c.endpoint_id == E.c.id, C.c.incident_id == I.c.id)
                .exists(),
            )
        )
        conn.execute(
            _insert_ignore(db)(C)
            .from_select(["endpoint_id", "incident_id", "seq", "failures"], missing)
            .on_conflict_do_nothing()
        )
        ranked = (
            select(
                C.c.endpoint_id,
                C.c.incident_id,
                C.c.seq,
                C.c.failures,
                C.c.failing_since,
                C.c.next_attempt_at,
                I.c.last_seq,
                func.row_number()
                .over(
                    partition_by=C.c.endpoint_id,
                    order_by=(C.c.next_attempt_at.is_not(None), C.c.incident_id),
                )
                .label("rank"),
            )
            .join(I, I.c.id == C.c.incident_id)
            .where(C.c.endpoint_id.in_(ids), I.c.last_seq > C.c.seq)
            .subquery()
        )
        behind = conn.execute(
            select(ranked)
            .where(ranked.c.rank <= max_incidents)
            .order_by(ranked.c.endpoint_id, ranked.c.rank)
        ).all()
        starts = sorted({(r.incident_id, r.seq) for r in behind})
        rows: list[Any] = []
        for chunk in range(0, len(starts), _RANGES_PER_READ):
            rows.extend(_events_after(conn, starts[chunk : chunk + _RANGES_PER_READ], per_incident))
    # Each event shaped once, whichever endpoints take it.
    events: dict[int, dict[int, tuple[dict[str, Any], datetime]]] = {}
    for row in rows:
        by_seq = events.setdefault(row["incident_id"], {})
        if row["seq"] not in by_seq:
            shaped = EventPublic.model_validate(dict(row)).model_dump(mode="json")
            by_seq[row["seq"]] = (shaped, row["occurred_at"])
    ordered = {i: sorted(by_seq.items()) for i, by_seq in events.items()}
    result = {endpoint_id: Backlog([], 0, None) for endpoint_id in ids}
    for r in behind:
        backlog = result[r.endpoint_id]
        backlog.depth += r.last_seq - r.seq
        head = Head(r.incident_id, r.seq, r.failures, r.failing_since, r.next_attempt_at)
        for seq, (event, occurred_at) in ordered.get(r.incident_id, ()):
            if seq <= r.seq:
                continue
            if len(head.events) == per_incident:
                break
            head.events.append(event)
            if backlog.oldest_at is None or occurred_at < backlog.oldest_at:
                backlog.oldest_at = occurred_at
        if head.events:
            backlog.heads.append(head)
    return result


_RANGES_PER_READ = 100  # (incident, cursor) starts read by one statement


def _events_after(conn: Any, starts: list[tuple[int, int]], per_incident: int) -> list[Any]:
    """The first `per_incident` events after each (incident, seq) start, in one UNION ALL
    of index range reads; events two starts share come back twice (the caller keeps one)."""
    parts = [
        select(EV)
        .where(EV.c.incident_id == incident_id, EV.c.seq > seq)
        .order_by(EV.c.seq)
        .limit(per_incident)
        .subquery()
        for incident_id, seq in starts
    ]
    if not parts:
        return []
    return list(conn.execute(union_all(*(select(p) for p in parts))).mappings().all())


def due_queues(
    db: Database, endpoint_ids: list[int], now: datetime, limit: int
) -> dict[int, list[QueuedItem]]:
    """Each endpoint's due pings and redeliveries (up to `limit` each), in one read."""
    ranked = (
        select(
            Q,
            func.row_number().over(partition_by=Q.c.endpoint_id, order_by=Q.c.id).label("rank"),
        )
        .where(Q.c.endpoint_id.in_(sorted(set(endpoint_ids))), Q.c.next_attempt_at <= now)
        .subquery()
    )
    with db.engine.begin() as conn:
        rows = conn.execute(
            select(ranked).where(ranked.c.rank <= limit).order_by(ranked.c.id)
        ).all()
    items: dict[int, list[QueuedItem]] = {endpoint_id: [] for endpoint_id in endpoint_ids}
    for r in rows:
        items[r.endpoint_id].append(
            QueuedItem(r.id, r.kind, r.event_id, r.body, r.failures, r.failing_since)
        )
    return items


def queued_event(db: Database, event_id: str) -> dict[str, Any] | None:
    with db.engine.begin() as conn:
        row = conn.execute(select(EV).where(EV.c.event_id == event_id)).mappings().first()
    return EventPublic.model_validate(dict(row)).model_dump(mode="json") if row else None


@dataclass(slots=True)
class Outcomes:
    """What a batch did, written in one transaction."""

    attempts: list[dict[str, Any]] = field(default_factory=list)
    # incident id -> the cursor's seq, failures, failing_since and next_attempt_at
    # (seq only ever moves forward)
    cursors: dict[int, dict[str, Any]] = field(default_factory=dict)
    queue_done: list[int] = field(default_factory=list)
    queue_retry: dict[int, dict[str, Any]] = field(default_factory=dict)
    succeeded_at: datetime | None = None
    failed_at: datetime | None = None
    disable: str | None = None

    def __bool__(self) -> bool:
        return bool(self.attempts or self.cursors or self.queue_done or self.queue_retry)


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b > a) else a


def record_all(db: Database, now: datetime, batches: list[tuple[int, Outcomes]]) -> None:
    """Write the outcomes of several batches (of one endpoint or several) in one
    transaction of few statements. Rows are locked in one order (cursors, queue items,
    then endpoints, each by id; a disabled endpoint's row is written again after, when
    it is already held), so two such transactions, or one and a lease renewal, never
    wait on each other in a cycle."""
    attempts = [a for _, done in batches for a in done.attempts]
    cursors: dict[tuple[int, int], dict[str, Any]] = {}
    queue_done: list[int] = []
    queue_retry: dict[int, dict[str, Any]] = {}
    endpoints: dict[int, tuple[datetime | None, datetime | None]] = {}
    disabled: dict[int, str] = {}
    for endpoint_id, done in batches:
        for incident_id, values in done.cursors.items():
            before = cursors.get((endpoint_id, incident_id))
            if before is None or values["seq"] >= before["seq"]:
                cursors[(endpoint_id, incident_id)] = values
        queue_done.extend(done.queue_done)
        queue_retry.update(done.queue_retry)
        success, failure = endpoints.get(endpoint_id, (None, None))
        endpoints[endpoint_id] = (
            _later(success, done.succeeded_at),
            _later(failure, done.failed_at),
        )
        if done.disable is not None:
            disabled.setdefault(endpoint_id, done.disable)
    with db.write_connection() as conn:
        if attempts:
            conn.execute(insert(A), attempts)
        if cursors:
            # One statement for every cursor, in key order. Monotone: a replica whose
            # lease ran out meanwhile never moves a cursor back.
            conn.execute(
                update(C)
                .where(
                    C.c.endpoint_id == bindparam("b_endpoint"),
                    C.c.incident_id == bindparam("b_incident"),
                )
                .values(
                    seq=(func.max if db.is_sqlite else func.greatest)(C.c.seq, bindparam("b_seq")),
                    failures=bindparam("b_failures"),
                    failing_since=bindparam("b_failing_since"),
                    next_attempt_at=bindparam("b_next_attempt_at"),
                ),
                [
                    {"b_endpoint": endpoint_id, "b_incident": incident_id}
                    | {f"b_{k}": v for k, v in values.items()}
                    for (endpoint_id, incident_id), values in sorted(cursors.items())
                ],
            )
        if queue_done:
            conn.execute(Q.delete().where(Q.c.id.in_(sorted(queue_done))))
        for queued_id, values in sorted(queue_retry.items()):
            conn.execute(update(Q).where(Q.c.id == queued_id).values(**values))
        # Every endpoint's row in one statement, in id order; the disabled ones again
        # after (rows this transaction already holds).
        conn.execute(
            update(E)
            .where(E.c.id == bindparam("b_id"))
            .values(
                last_success_at=func.coalesce(bindparam("b_success"), E.c.last_success_at),
                last_failure_at=func.coalesce(bindparam("b_failure"), E.c.last_failure_at),
            ),
            [
                {"b_id": endpoint_id, "b_success": at[0], "b_failure": at[1]}
                for endpoint_id, at in sorted(endpoints.items())
            ],
        )
        for endpoint_id, reason in sorted(disabled.items()):
            conn.execute(
                update(E)
                .where(E.c.id == endpoint_id)
                .values(
                    status="disabled",
                    status_reason=reason,
                    updated_at=now,
                    leased_by=None,
                    lease_until=None,
                )
            )
