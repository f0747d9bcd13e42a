"""Claims on PostgreSQL in batches, outside the ORM.

Claiming is what many responders do at once. The general command
(`claims.claim_request`) runs nine statements through SQLAlchemy's ORM in a worker
thread, one transaction per claim. This path applies the same rules (the same
functions) over an async psycopg connection, and decides the claims that arrive
together in one transaction of three round trips:

1. lock their incidents (FOR UPDATE, in id order, as every command that touches
   their requests locks them), then read the requests with their target rings,
   earlier claims with the callers' idempotency keys, the incidents' viewers and
   fresh claim ids, pipelined behind the lock;
2. decide each claim in Python, in arrival order, on the state the claims before it
   left; write the requests' new quantities, the claims, their events and the
   incidents' last seqs in one statement;
3. commit, then answer every caller.

The write only applies where a request is still exactly as it was read, so the
database stays the arbiter; if any part did not apply, the whole batch rolls back.
Whenever this path cannot answer a claim by itself (a refusal that needs more
reading to explain, a reused key with another body, a rolled-back batch, a database
error, a lost unique-key race) it returns None and the caller runs the general
command, which then answers — both paths give the same answers, rows and events.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg
from prometheus_client import Histogram
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy.engine import make_url

from service.commands.admin import hash_token
from service.commands.claims import check_claimable, fingerprint
from service.commands.context import audience_of, require_city
from service.commands.presenters import as_json, request_public_of
from service.domain import lifecycles as lc
from service.domain.actors import Actor, Role
from service.domain.errors import DomainError
from service.domain.events import EventType
from service.domain.quantities import check_claim_fits
from service.models import ClaimCreate, ClaimPublic, EventPublic
from service.persistence.tables import AidRequest
from service.settings import Settings

log = logging.getLogger(__name__)

# (claim, created, events to publish)
Answer = tuple[ClaimPublic, bool, list[EventPublic]]

BATCH_SIZE = Histogram(
    "aidmesh_claim_batch_size",
    "Claims decided together in one PostgreSQL transaction",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)

_REQUEST_COLUMNS = ", ".join(AidRequest.__table__.columns.keys())  # type: ignore[attr-defined]
_CLAIMABLE = [s.value for s in lc.CLAIMABLE_REQUEST_STATUSES]

# The incidents of the batch's requests, locked in id order (every batch locks in the
# same order, so two batches never deadlock on each other).
_LOCK = """
SELECT id, city_id, status, last_seq, claim_acceptance_timeout_s FROM incidents
 WHERE id IN (SELECT incident_id FROM aid_requests WHERE id = ANY(%(request_ids)s::integer[]))
 ORDER BY id
   FOR UPDATE"""
# Read once the incidents are locked: the requests with their target rings, ...
_READ_REQUESTS = f"""
SELECT {", ".join("r." + c for c in _REQUEST_COLUMNS.split(", "))},
       (SELECT json_object_agg(t.city_id, t.ring) FROM request_targets t
         WHERE t.request_id = r.id) AS target_rings
  FROM aid_requests r WHERE r.id = ANY(%(request_ids)s::integer[])"""  # noqa: S608
# ... earlier claims made with the callers' idempotency keys, ...
_READ_EARLIER = """
SELECT row_to_json(c) FROM claims c
  JOIN unnest(%(city_ids)s::integer[], %(keys)s::text[]) AS k(city_id, key)
    ON c.city_id = k.city_id AND c.idempotency_key = k.key"""
# ... every incident's viewers (`incident_viewers`: its city, its networks' cities and
# the cities its requests reach now; a claim changes none of them), ...
_READ_VIEWERS = """
SELECT i.id, (SELECT json_agg(v.city_id ORDER BY v.city_id) FROM (
           SELECT i.city_id AS city_id
           UNION
           SELECT m.city_id FROM network_memberships m
            WHERE m.network_id IN (SELECT network_id FROM network_memberships
                                    WHERE city_id = i.city_id)
           UNION
           SELECT t.city_id FROM request_targets t JOIN aid_requests r ON r.id = t.request_id
            WHERE r.incident_id = i.id AND t.ring <= r.ring) AS v) AS viewers
  FROM incidents i
 WHERE i.id IN (SELECT incident_id FROM aid_requests WHERE id = ANY(%(request_ids)s::integer[]))"""
# ... and an id for each claim that may be made.
_NEW_CLAIM_IDS = """
SELECT nextval(pg_get_serial_sequence('claims', 'id')) FROM generate_series(1, %(count)s)"""

# The batch's writes in one statement: each request's final quantity (only where the
# request is still exactly as read: the incident locks make that certain, the condition
# keeps the database the arbiter regardless), the claims, their events and each
# incident's last seq. The counts tell whether every part applied; if one did not, the
# transaction is rolled back.
_WRITE = """
WITH taken AS (
    UPDATE aid_requests r
       SET claimed_quantity = u.claimed, status = u.status, updated_at = u.at
      FROM unnest(%(r_id)s::integer[], %(r_claimed)s::integer[], %(r_status)s::text[],
                  %(r_at)s::timestamptz[], %(r_claimed_before)s::integer[],
                  %(r_status_before)s::text[], %(r_ring)s::integer[])
           AS u(id, claimed, status, at, claimed_before, status_before, ring)
     WHERE r.id = u.id AND r.claimed_quantity = u.claimed_before
       AND r.status = u.status_before AND u.status_before = ANY(%(claimable)s::text[])
       AND r.ring = u.ring AND u.claimed <= r.quantity
    RETURNING r.id
), made AS (
    INSERT INTO claims (id, request_id, incident_id, city_id, quantity, status, note, answer,
                        idempotency_key, body_fingerprint, claimed_by_token_id,
                        created_at, updated_at, expires_at)
    SELECT c.id, c.request_id, c.incident_id, c.city_id, c.quantity, %(claim_status)s, c.note,
           NULL, c.key, c.fingerprint, c.token_id, c.at, c.at, c.expires_at
      FROM unnest(%(c_id)s::integer[], %(c_request_id)s::integer[], %(c_incident_id)s::integer[],
                  %(c_city_id)s::integer[], %(c_quantity)s::integer[], %(c_note)s::text[],
                  %(c_key)s::text[], %(c_fingerprint)s::text[], %(c_token_id)s::integer[],
                  %(c_at)s::timestamptz[], %(c_expires_at)s::timestamptz[])
           AS c(id, request_id, incident_id, city_id, quantity, note, key, fingerprint,
                token_id, at, expires_at)
    RETURNING id
), recorded AS (
    INSERT INTO events (event_id, incident_id, seq, type, occurred_at, actor_token_id,
                        actor_city_id, actor_role, data, audience)
    SELECT e.event_id, e.incident_id, e.seq, %(event_type)s, e.at, e.token_id, e.city_id,
           e.role, e.data::json, e.audience::json
      FROM unnest(%(e_event_id)s::text[], %(e_incident_id)s::integer[], %(e_seq)s::integer[],
                  %(e_at)s::timestamptz[], %(e_token_id)s::integer[], %(e_city_id)s::integer[],
                  %(e_role)s::text[], %(e_data)s::text[], %(e_audience)s::text[])
           AS e(event_id, incident_id, seq, at, token_id, city_id, role, data, audience)
    RETURNING id
), numbered AS (
    UPDATE incidents i SET last_seq = u.last
      FROM unnest(%(i_id)s::integer[], %(i_before)s::integer[], %(i_last)s::integer[])
           AS u(id, before, last)
     WHERE i.id = u.id AND i.last_seq = u.before
    RETURNING i.id
)
SELECT (SELECT count(*) FROM taken), (SELECT count(*) FROM made),
       (SELECT count(*) FROM recorded), (SELECT count(*) FROM numbered)"""

_ACTOR_OF_HASH = """
SELECT id, role, city_id FROM api_tokens
 WHERE token_hash = %(hash)s AND revoked_at IS NULL"""


def conninfo(settings: Settings) -> str:
    """The libpq connection string of the settings' SQLAlchemy URL."""
    url = make_url(settings.database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def open_pool(settings: Settings) -> AsyncConnectionPool:
    pool = AsyncConnectionPool(
        conninfo(settings),
        min_size=2,
        max_size=settings.db_pool_size,
        # A claim that waits this long for a connection is answered 503 (busy), as the
        # ORM's pool does: handing it to the slower general command would only deepen
        # the overload that made it wait.
        timeout=settings.db_pool_timeout_s,
        kwargs={
            "autocommit": True,
            "connect_timeout": 5,
            "options": f"-c statement_timeout={settings.db_statement_timeout_ms} -c timezone=UTC",
        },
        open=False,
        name="claims",
    )
    await pool.open()
    return pool


@dataclass(eq=False)
class _Ask:
    """One caller's claim, waiting for its batch."""

    actor: Actor
    city_id: int
    request_id: int
    body: ClaimCreate
    key: str
    now: datetime
    answer: asyncio.Future[Answer | None]

    @property
    def print_(self) -> str:
        return fingerprint(self.request_id, self.body)


class _Changed(Exception):
    """A row the batch read changed before its write (never under the incident locks)."""


class PgClaims:
    """The claim command and token lookup over an async connection pool of one event loop.

    Claims are answered in batches, as a database commits in groups: while a batch is
    in the database, the claims that arrive queue up, and the next batch takes all of
    them (up to `max_batch`) in one transaction — one lock of each incident, one read,
    one write and one commit for them all. A lone claim is a batch of one and does not
    wait. Within a batch the claims are decided one after another, in arrival order,
    each on the state the ones before it left, exactly as if each had its own
    transaction; their answers are given once the batch has committed.
    """

    def __init__(
        self, pool: AsyncConnectionPool, *, max_batch: int = 128, max_in_flight: int = 2
    ) -> None:
        self.pool = pool
        self.loop = asyncio.get_running_loop()
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self._queue: deque[_Ask] = deque()
        self._batches: set[asyncio.Task[None]] = set()
        self.largest_batch = 0

    def usable(self) -> bool:
        # The pool's connections belong to the loop that opened it; callers on another
        # loop (tests, the CLI) take the general path.
        try:
            return asyncio.get_running_loop() is self.loop and not self.pool.closed
        except RuntimeError:
            return False

    async def actor_for_secret(self, secret: str) -> Actor | None:
        """The actor of an unrevoked token, like `actor_for_token`, in one round trip."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(_ACTOR_OF_HASH, {"hash": hash_token(secret)})
            row = await cur.fetchone()
        if row is None:
            return None
        token_id, role, city_id = row
        return Actor(role=Role(role), city_id=city_id, token_id=token_id)

    async def claim(
        self, actor: Actor, request_id: int, body: ClaimCreate, key: str, now: datetime
    ) -> Answer | None:
        """Claim as `claims.claim_request` does, or None for the general command to answer.
        Refusals the rules give from what was read are raised here, as the command does;
        so is PoolTimeout (overloaded: 503, not the slower path)."""
        city_id = require_city(actor, Role.RESPONDER, Role.MANAGER)
        answer: asyncio.Future[Answer | None] = self.loop.create_future()
        # A caller that went away leaves its answer unread; that is not an error.
        answer.add_done_callback(_read_out)
        self._queue.append(_Ask(actor, city_id, request_id, body, key, now, answer))
        self._start_batches()
        # The batch goes on if this caller goes away: its claim is decided all the same
        # (and a retry with the same key replays it).
        return await asyncio.shield(answer)

    async def aclose(self) -> None:
        """Let the batches in the database finish."""
        while self._batches:
            await asyncio.gather(*self._batches, return_exceptions=True)

    def _start_batches(self) -> None:
        while self._queue and len(self._batches) < self.max_in_flight:
            batch = self._next_batch()
            task = self.loop.create_task(self._answer(batch), name="claim-batch")
            self._batches.add(task)
            task.add_done_callback(self._batch_done)

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        self._batches.discard(task)
        self._start_batches()

    def _next_batch(self) -> list[_Ask]:
        """The oldest queued claims, at most one per (city, idempotency key): a retry that
        arrives while its first try is queued is decided after it, in the next batch."""
        batch: list[_Ask] = []
        seen: set[tuple[int, str]] = set()
        later: list[_Ask] = []
        while self._queue and len(batch) < self.max_batch:
            ask = self._queue.popleft()
            if (ask.city_id, ask.key) in seen:
                later.append(ask)
            else:
                seen.add((ask.city_id, ask.key))
                batch.append(ask)
        self._queue.extendleft(reversed(later))
        self.largest_batch = max(self.largest_batch, len(batch))
        BATCH_SIZE.observe(len(batch))
        return batch

    async def _answer(self, batch: list[_Ask]) -> None:
        try:
            outcomes = await self._decide(batch)
        except PoolTimeout as exc:
            for ask in batch:
                _settle(ask, exc)
        except psycopg.Error as exc:
            # Unique-key race, deadlock, lost connection, timeout: the general command
            # retries or reports it as the service always does.
            log.info("%d claims taking the general path: %r", len(batch), exc)
            for ask in batch:
                _settle(ask, None)
        except _Changed as exc:
            log.warning("%d claims taking the general path: %s", len(batch), exc)
            for ask in batch:
                _settle(ask, None)
        except BaseException as exc:
            for ask in batch:
                _settle(ask, exc)
            raise
        else:
            for ask, outcome in zip(batch, outcomes, strict=True):
                _settle(ask, outcome)

    async def _decide(self, batch: list[_Ask]) -> list[Answer | DomainError | None]:
        """Decide each claim of the batch in order and write those made, in one transaction.
        Returns each claim's outcome: its answer, its refusal, or None for the general
        command. Nothing is answered unless the transaction commits."""
        request_ids = sorted({ask.request_id for ask in batch})
        async with self.pool.connection() as conn, conn.pipeline(), conn.transaction():
            on = {
                "request_ids": request_ids,
                "city_ids": [ask.city_id for ask in batch],
                "keys": [ask.key for ask in batch],
                "count": len(batch),
            }
            # One round trip: the lock, then the reads, each seeing what the lock let in
            # (all are sent before the first answer is awaited).
            lock = await conn.cursor(row_factory=dict_row).execute(_LOCK, on)
            requests = await conn.cursor(row_factory=dict_row).execute(_READ_REQUESTS, on)
            earlier = await conn.execute(_READ_EARLIER, on)
            viewers = await conn.execute(_READ_VIEWERS, on)
            ids = await conn.execute(_NEW_CLAIM_IDS, on)
            state = _BatchState(
                incidents={i["id"]: i for i in await lock.fetchall()},
                requests={r["id"]: r for r in await requests.fetchall()},
                earlier={
                    (c["city_id"], c["idempotency_key"]): c for (c,) in await earlier.fetchall()
                },
                viewers={incident_id: v for incident_id, v in await viewers.fetchall()},
                claim_ids=iter([claim_id for (claim_id,) in await ids.fetchall()]),
            )
            outcomes = [state.decide(ask) for ask in batch]
            if state.claims:
                cur = await conn.execute(_WRITE, state.write_args())
                counts = await cur.fetchone()
                expected = (
                    len(state.touched),
                    len(state.claims),
                    len(state.claims),
                    len(state.seq_before),
                )
                if counts != expected:
                    raise _Changed(f"rows written {counts}, expected {expected}")
        # The transaction committed when the block ended.
        return outcomes


def _read_out(answer: asyncio.Future[Any]) -> None:
    if not answer.cancelled():
        answer.exception()


def _settle(ask: _Ask, outcome: Answer | BaseException | None) -> None:
    if ask.answer.done():
        return
    if isinstance(outcome, asyncio.CancelledError):
        ask.answer.cancel()
    elif isinstance(outcome, BaseException):
        ask.answer.set_exception(outcome)
    else:
        ask.answer.set_result(outcome)


@dataclass
class _BatchState:
    """What a batch read, as its claims leave it one after another."""

    incidents: dict[int, dict[str, Any]]
    requests: dict[int, dict[str, Any]]
    earlier: dict[tuple[int, str], dict[str, Any]]
    viewers: dict[int, list[int]]
    claim_ids: Iterator[int]
    # request id -> (claimed_quantity, status) as read, for the write's condition
    touched: dict[int, tuple[int, str]] = field(default_factory=dict)
    seq_before: dict[int, int] = field(default_factory=dict)
    claims: list[tuple[_Ask, ClaimPublic, EventPublic]] = field(default_factory=list)

    def decide(self, ask: _Ask) -> Answer | DomainError | None:
        request = self.requests.get(ask.request_id)
        if request is None:
            return None  # not found: the general command says so
        incident = self.incidents[request["incident_id"]]
        earlier = self.earlier.get((ask.city_id, ask.key))
        if earlier is not None:
            if earlier["body_fingerprint"] != ask.print_:
                return None  # the general command refuses the reused key
            return ClaimPublic.model_validate(earlier), False, []
        rings = {int(city): ring for city, ring in (request["target_rings"] or {}).items()}
        ring = rings.get(ask.city_id)
        if ring is None or ring > request["ring"]:
            return None  # refused; the general command explains why (404 or 403)
        try:
            check_claimable(incident["status"], request["status"])
            check_claim_fits(request["quantity"], request["claimed_quantity"], ask.body.quantity)
        except DomainError as refused:
            return refused

        self.touched.setdefault(request["id"], (request["claimed_quantity"], request["status"]))
        self.seq_before.setdefault(incident["id"], incident["last_seq"])
        after = _request_after(request, ask.body.quantity, ask.now)
        self.requests[request["id"]] = after
        incident["last_seq"] += 1
        public_after = request_public_of({k: v for k, v in after.items() if k != "target_rings"})
        claim = ClaimPublic(
            id=next(self.claim_ids),
            request_id=request["id"],
            incident_id=incident["id"],
            city_id=ask.city_id,
            quantity=ask.body.quantity,
            status=lc.ClaimStatus.CLAIMED.value,
            note=ask.body.note,
            answer=None,
            created_at=ask.now,
            updated_at=ask.now,
            expires_at=ask.now + timedelta(seconds=incident["claim_acceptance_timeout_s"]),
        )
        event = EventPublic(
            event_id=str(uuid.uuid4()),
            incident_id=incident["id"],
            seq=incident["last_seq"],
            type=EventType.CLAIM_MADE.value,
            occurred_at=ask.now,
            actor_role=ask.actor.event_role,
            actor_city_id=ask.city_id,
            data={"claim": as_json(claim), "request": as_json(public_after)},
            audience={
                "cities": audience_of(public_after, rings),
                "viewers": self.viewers[incident["id"]],
            },
        )
        self.claims.append((ask, claim, event))
        return claim, True, [event]

    def write_args(self) -> dict[str, Any]:
        after = [self.requests[request_id] for request_id in self.touched]
        made = [(ask, claim) for ask, claim, _ in self.claims]
        events = [event for _, _, event in self.claims]
        return {
            "claimable": _CLAIMABLE,
            "r_id": list(self.touched),
            "r_claimed": [r["claimed_quantity"] for r in after],
            "r_status": [r["status"] for r in after],
            "r_at": [r["updated_at"] for r in after],
            "r_claimed_before": [before[0] for before in self.touched.values()],
            "r_status_before": [before[1] for before in self.touched.values()],
            "r_ring": [r["ring"] for r in after],
            "claim_status": lc.ClaimStatus.CLAIMED.value,
            "c_id": [claim.id for _, claim in made],
            "c_request_id": [claim.request_id for _, claim in made],
            "c_incident_id": [claim.incident_id for _, claim in made],
            "c_city_id": [claim.city_id for _, claim in made],
            "c_quantity": [claim.quantity for _, claim in made],
            "c_note": [claim.note for _, claim in made],
            "c_key": [ask.key for ask, _ in made],
            "c_fingerprint": [ask.print_ for ask, _ in made],
            "c_token_id": [ask.actor.token_id for ask, _ in made],
            "c_at": [claim.created_at for _, claim in made],
            "c_expires_at": [claim.expires_at for _, claim in made],
            "event_type": EventType.CLAIM_MADE.value,
            "e_event_id": [e.event_id for e in events],
            "e_incident_id": [e.incident_id for e in events],
            "e_seq": [e.seq for e in events],
            "e_at": [e.occurred_at for e in events],
            "e_token_id": [ask.actor.token_id for ask, _ in made],
            "e_city_id": [e.actor_city_id for e in events],
            "e_role": [e.actor_role for e in events],
            "e_data": [orjson.dumps(e.data).decode() for e in events],
            "e_audience": [orjson.dumps(e.audience).decode() for e in events],
            "i_id": list(self.seq_before),
            "i_before": list(self.seq_before.values()),
            "i_last": [self.incidents[i]["last_seq"] for i in self.seq_before],
        }


def _request_after(request: Mapping[str, Any], quantity: int, now: datetime) -> dict[str, Any]:
    """The request row as the claim leaves it (as `claims._take_units` writes it)."""
    claimed = request["claimed_quantity"] + quantity
    status = lc.request_status_for(request["quantity"], claimed, request["delivered_quantity"])
    return {**request, "claimed_quantity": claimed, "status": status.value, "updated_at": now}
