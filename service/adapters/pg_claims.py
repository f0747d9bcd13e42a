"""The PostgreSQL claim path and token lookup: claims in batches, outside the ORM.

Claiming is what many responders do at once. The general command
(`commands.claims.claim_request`, the ORM path) runs nine statements through
SQLAlchemy's ORM in a worker thread, one transaction per claim. `PgClaims` (a
`service.claim_paths.ClaimPath`, chosen in `create_app` on PostgreSQL) decides
through the same claim core (`service.domain.claims.decide_claim`) over an async
psycopg pool, and decides the claims that arrive together in one transaction of
three round trips:

1. lock their incidents (FOR UPDATE, as every command that touches their requests
   does; in id order, so that two batches never deadlock), then read the requests
   with their target rings, earlier claims with the callers' idempotency keys, the
   incidents' viewers and fresh claim ids, pipelined behind the lock;
2. decide each claim with the claim core, in arrival order, on the state the claims
   before it left; write the requests' new quantities (the core's tallies), the
   claims, their events and the incidents' last seqs in one statement;
3. commit, then answer every caller.

The write only applies where a request is still exactly as it was read, so the
database stays the arbiter; if any part did not apply, the whole batch rolls back.
Whenever this path cannot answer a claim by itself (a refusal that needs more
reading to explain, a reused key with another body, a rolled-back batch, a database
error, a lost unique-key race, a claim from a package that is not the caller's city's,
is unavailable or does not hold the resource, a claim that fills a request with open
offers to answer) it returns None and the caller runs the general command, which then
answers — both paths give the same answers, rows and events.

A claim from a roster package commits the package's units in the same transaction:
the batch also locks the packages' items it claims from (after the incidents, in id
order) and writes their committed units with the claims, under the same kind of guard.
Judging again the cover of the requests those packages' cities are in (the command does
it in the claim's transaction) is left to the executor, right after the commit, for
all the claims of a moment at once (`commands.escalation.escalate_after_commits`).

`PgTokens` is the same pool's `service.tokens.TokenLookup`: one round trip per
lookup instead of a worker thread and the ORM, for REST and the websocket alike.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

import orjson
import psycopg
from prometheus_client import Histogram
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy.engine import make_url

from service.claim_paths import ClaimAnswer
from service.commands.admin import hash_token
from service.commands.claims import fingerprint
from service.commands.context import audience_of, require_city
from service.commands.presenters import as_json, request_public_of
from service.domain import claims as rules
from service.domain import lifecycles as lc
from service.domain import rosters as roster_rules
from service.domain.actors import Actor, Role
from service.domain.errors import DomainError
from service.domain.events import EventType
from service.domain.tokens import parse_scopes
from service.gathered import Gathered
from service.models import ClaimCreate, ClaimPublic, EventPublic
from service.persistence.tables import AidRequest
from service.settings import Settings
from service.tokens import TokenLookup

log = logging.getLogger(__name__)

# Incidents whose reached cities a replica keeps (the most recently claimed on).
_REACHED_KEPT = 256

Answer = ClaimAnswer

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
         WHERE t.request_id = r.id) AS target_rings,
       EXISTS (SELECT 1 FROM offers o WHERE o.request_id = r.id
                  AND o.status IN ('open', 'countered')) AS has_open_offers
  FROM aid_requests r WHERE r.id = ANY(%(request_ids)s::integer[])"""  # noqa: S608
_READ_ONLY_COLUMNS = frozenset({"target_rings", "has_open_offers"})
# ... the items of the packages the batch's claims are made from (only read when some
# are), locked in id order after the incidents, ...
_READ_ITEMS = """
SELECT i.id, i.package_id, i.resource, i.quantity, i.cap_quantity, i.committed_quantity,
       p.city_id, p.name, p.available, p.unavailable_until
  FROM package_items i JOIN roster_packages p ON p.id = i.package_id
 WHERE i.id IN (SELECT m.id
                  FROM unnest(%(package_ids)s::integer[], %(package_requests)s::integer[])
                       AS k(package_id, request_id)
                  JOIN aid_requests r ON r.id = k.request_id
                  JOIN package_items m ON m.package_id = k.package_id
                                      AND m.resource = r.resource)
 ORDER BY i.id
   FOR UPDATE OF i"""
# ... earlier claims made with the callers' idempotency keys, ...
_READ_EARLIER = """
SELECT row_to_json(c) FROM claims c
  JOIN unnest(%(city_ids)s::integer[], %(keys)s::text[]) AS k(city_id, key)
    ON c.city_id = k.city_id AND c.idempotency_key = k.key"""
# ... and every incident's viewers (`incident_viewers`: its city, its networks' cities
# and the cities its requests reach). The reached cities are the costly part (every
# target of every request of the incident), and only a new request or an escalation
# changes them, each with an event; a claim changes none of them. So each replica keeps
# them with the incident's event they were read at (`known`: its seq and its id, never
# reused, which a rolled-back batch never wrote), and reads them again only if that
# event is not there, or any event but a claim came after it. (`t.ring <= r.ring` is
# `rules.ring_reaches`, as `commands.context.target_reached` writes it for the ORM.)
_READ_VIEWERS = """
SELECT i.id, i.city_id, i.last_seq, last.event_id,
       (SELECT json_agg(DISTINCT m.city_id) FROM network_memberships m
         WHERE m.network_id IN (SELECT network_id FROM network_memberships
                                 WHERE city_id = i.city_id)) AS peers,
       CASE WHEN EXISTS (SELECT 1 FROM events seen
                          WHERE seen.incident_id = i.id AND seen.seq = k.seq
                            AND seen.event_id = k.event_id)
             AND NOT EXISTS (SELECT 1 FROM events since
                              WHERE since.incident_id = i.id AND since.seq > k.seq
                                AND since.type <> %(claim_made)s)
            THEN NULL
            ELSE (SELECT COALESCE(json_agg(DISTINCT t.city_id), '[]')
                    FROM request_targets t JOIN aid_requests r ON r.id = t.request_id
                   WHERE r.incident_id = i.id AND t.ring <= r.ring)
       END AS reached
  FROM incidents i
  LEFT JOIN events last ON last.incident_id = i.id AND last.seq = i.last_seq
  LEFT JOIN json_to_recordset(%(known)s::json) AS k(id integer, seq integer, event_id text)
         ON k.id = i.id
 WHERE i.id IN (SELECT incident_id FROM aid_requests WHERE id = ANY(%(request_ids)s::integer[]))"""
# ... an id for each claim that may be made, ...
_NEW_CLAIM_IDS = """
SELECT nextval(pg_get_serial_sequence('claims', 'id')) FROM generate_series(1, %(count)s)"""

# The batch's writes in one statement: each request's final quantity and status as the
# claim core left them (`rules.decide_claim`), the claims, their events and each
# incident's last seq. The request's condition is the core's rule restated as a guard:
# the core took units from the request as read (`claimed_before`, `status_before`, a
# claimable status, `ring` for the ring that let the cities in) and never beyond its
# quantity (`u.claimed <= r.quantity`); the row must still be exactly that. The incident
# locks make that certain; the condition keeps the database the arbiter regardless.
# The counts tell whether every part applied; if one did not, the transaction is
# rolled back. Rows travel as one JSON document per table (serialised
# by orjson; psycopg's array adaptation cost more than the rest of the claim).
WRITE = """
WITH taken AS (
    UPDATE aid_requests r
       SET claimed_quantity = u.claimed, status = u.status, updated_at = u.at
      FROM json_to_recordset(%(requests)s::json)
           AS u(id integer, claimed integer, status text, at timestamptz,
                claimed_before integer, status_before text, ring integer)
     WHERE r.id = u.id AND r.claimed_quantity = u.claimed_before
       AND r.status = u.status_before AND u.status_before = ANY(%(claimable)s::text[])
       AND r.ring = u.ring AND u.claimed <= r.quantity
    RETURNING r.id
), made AS (
    INSERT INTO claims (id, request_id, incident_id, city_id, quantity, status, note, answer,
                        idempotency_key, body_fingerprint, claimed_by_token_id,
                        created_at, updated_at, expires_at, package_id)
    SELECT c.id, c.request_id, c.incident_id, c.city_id, c.quantity, c.status, c.note,
           NULL, c.key, c.fingerprint, c.token_id, c.at, c.at, c.expires_at, c.package_id
      FROM json_to_recordset(%(claims)s::json)
           AS c(id integer, request_id integer, incident_id integer, city_id integer,
                quantity integer, status text, note text, key text, fingerprint text,
                token_id integer, at timestamptz, expires_at timestamptz, package_id integer)
    RETURNING id
), committed AS (
    UPDATE package_items p SET committed_quantity = u.committed
      FROM json_to_recordset(%(items)s::json)
           AS u(id integer, committed integer, committed_before integer, cap integer)
     WHERE p.id = u.id AND p.committed_quantity = u.committed_before
       AND p.cap_quantity = u.cap AND u.committed <= p.cap_quantity
    RETURNING p.id
), recorded AS (
    INSERT INTO events (event_id, incident_id, seq, type, occurred_at, actor_token_id,
                        actor_city_id, actor_role, actor_user_id, actor_name, data, audience)
    SELECT e.event_id, e.incident_id, e.seq, e.type, e.at, e.token_id, e.city_id,
           e.role, e.user_id, e.name, e.data, e.audience
      FROM json_to_recordset(%(events)s::json)
           AS e(event_id text, incident_id integer, seq integer, type text, at timestamptz,
                token_id integer, city_id integer, role text, user_id integer, name text,
                data json, audience json)
    RETURNING id
), numbered AS (
    UPDATE incidents i SET last_seq = u.last
      FROM json_to_recordset(%(incidents)s::json) AS u(id integer, before integer, last integer)
     WHERE i.id = u.id AND i.last_seq = u.before
    RETURNING i.id
)
SELECT (SELECT count(*) FROM taken), (SELECT count(*) FROM made),
       (SELECT count(*) FROM recorded), (SELECT count(*) FROM numbered),
       (SELECT count(*) FROM committed)"""

Row = tuple[Any, ...]  # a token's id, role, city and scopes

# The tokens asked for by their secret's hash, or by id (a websocket's commands), that
# are neither revoked nor expired: each row led by the key it was asked for by.
_ACTORS_OF_HASHES = """
SELECT token_hash, id, role, city_id, scopes FROM api_tokens
 WHERE token_hash = ANY(%(keys)s) AND revoked_at IS NULL
   AND (expires_at IS NULL OR expires_at > %(now)s)"""

_ACTORS_OF_IDS = """
SELECT id, id, role, city_id, scopes FROM api_tokens
 WHERE id = ANY(%(keys)s) AND revoked_at IS NULL
   AND (expires_at IS NULL OR expires_at > %(now)s)"""


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

    @cached_property
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
        self,
        pool: AsyncConnectionPool,
        *,
        max_batch: int = 256,
        max_in_flight: int = 2,
        write_statement: str = WRITE,
    ) -> None:
        """`write_statement` is the batch's write (`WRITE`); it takes the parameters of
        `_BatchState.write_args` and answers the five counts `WRITE` answers."""
        self.pool = pool
        self.write_statement = write_statement
        self.loop = asyncio.get_running_loop()
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self._queue: deque[_Ask] = deque()
        self._batches: set[asyncio.Task[None]] = set()
        # (city, idempotency key) of every claim in a batch in the database
        self._keys_in_flight: set[tuple[int, str]] = set()
        self.largest_batch = 0
        # incident id -> (an event of it: seq and id, the cities its requests reached then)
        self._reached: OrderedDict[int, tuple[int, str, list[int]]] = OrderedDict()

    def usable(self) -> bool:
        # The pool's connections belong to the loop that opened it; callers on another
        # loop (tests, the CLI) take the general path.
        try:
            return asyncio.get_running_loop() is self.loop and not self.pool.closed
        except RuntimeError:
            return False

    async def claim(
        self, actor: Actor, request_id: int, body: ClaimCreate, key: str, now: datetime
    ) -> Answer | None:
        """Claim as `claims.claim_request` does, or None for the general command to answer.
        Refusals the rules give from what was read are raised here, as the command does;
        so is PoolTimeout (overloaded: 503, not the slower path)."""
        if not self.usable():
            return None
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
        """The oldest queued claims, at most one per (city, idempotency key) in the database
        at a time: a retry that arrives while its first try is queued or in a batch is
        decided after it (and replays it, or is refused for another body) instead of
        racing it to the unique key, which would throw a whole batch to the general path."""
        batch: list[_Ask] = []
        later: list[_Ask] = []
        while self._queue and len(batch) < self.max_batch:
            ask = self._queue.popleft()
            key = (ask.city_id, ask.key)
            if key in self._keys_in_flight:
                later.append(ask)
            else:
                self._keys_in_flight.add(key)
                batch.append(ask)
        self._queue.extendleft(reversed(later))
        self.largest_batch = max(self.largest_batch, len(batch))
        BATCH_SIZE.observe(len(batch))
        return batch

    async def _answer(self, batch: list[_Ask]) -> None:
        try:
            await self._settle_batch(batch)
        finally:
            self._keys_in_flight.difference_update((ask.city_id, ask.key) for ask in batch)

    async def _settle_batch(self, batch: list[_Ask]) -> None:
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
        except Exception as exc:
            # A fault of this path: each caller gets it (and is answered as any command
            # error is), and the transaction was rolled back before the commit.
            log.exception("%d claims failed", len(batch))
            for ask in batch:
                _settle(ask, exc)
        except BaseException as exc:  # cancelled (shutting down)
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
            known = dict(self._reached)
            on = {
                "request_ids": request_ids,
                "city_ids": [ask.city_id for ask in batch],
                "keys": [ask.key for ask in batch],
                "count": len(batch),
                "known": orjson.dumps(
                    [{"id": i, "seq": seq, "event_id": e} for i, (seq, e, _) in known.items()]
                ).decode(),
                "claim_made": EventType.CLAIM_MADE.value,
            }
            # One round trip: the lock, then the reads, each seeing what the lock let in
            # (all are sent before the first answer is awaited).
            lock = await conn.cursor(row_factory=dict_row).execute(_LOCK, on)
            requests = await conn.cursor(row_factory=dict_row).execute(_READ_REQUESTS, on)
            earlier = await conn.execute(_READ_EARLIER, on)
            viewers = await conn.execute(_READ_VIEWERS, on)
            ids = await conn.execute(_NEW_CLAIM_IDS, on)
            from_packages = [ask for ask in batch if ask.body.package_id is not None]
            items = None
            if from_packages:
                on["package_ids"] = [ask.body.package_id for ask in from_packages]
                on["package_requests"] = [ask.request_id for ask in from_packages]
                items = await conn.cursor(row_factory=dict_row).execute(_READ_ITEMS, on)
            state = _BatchState(
                incidents={i["id"]: i for i in await lock.fetchall()},
                requests={r["id"]: r for r in await requests.fetchall()},
                earlier={
                    (c["city_id"], c["idempotency_key"]): c for (c,) in await earlier.fetchall()
                },
                viewers={},
                claim_ids=iter([claim_id for (claim_id,) in await ids.fetchall()]),
                items={
                    (i["package_id"], i["resource"]): i
                    for i in (await items.fetchall() if items is not None else ())
                },
            )
            kept: dict[int, tuple[int, str, list[int]]] = {}
            for incident_id, city_id, seq, event_id, peers, reached in await viewers.fetchall():
                if reached is None:  # unchanged since the event they were kept at
                    reached = known[incident_id][2]
                kept[incident_id] = (seq, event_id, reached)
                state.viewers[incident_id] = sorted({city_id, *(peers or ()), *reached})
            outcomes = [state.decide(ask) for ask in batch]
            # Kept before the commit, so that the next batch, already on its way, can use
            # them: if this one rolls back, its events never exist and nothing matches.
            for _, _, event in state.claims:
                kept[event.incident_id] = (event.seq, event.event_id, kept[event.incident_id][2])
            for incident_id, entry in kept.items():
                self._remember(incident_id, entry)
            if state.claims:
                cur = await conn.execute(self.write_statement, state.write_args())
                counts = await cur.fetchone()
                expected = (
                    len(state.touched),
                    len(state.claims),
                    len(state.claims),
                    len(state.seq_before),
                    len(state.items_touched),
                )
                if counts != expected:
                    raise _Changed(f"rows written {counts}, expected {expected}")
        # The transaction committed when the block ended.
        return outcomes

    def _remember(self, incident_id: int, entry: tuple[int, str, list[int]]) -> None:
        self._reached[incident_id] = entry
        self._reached.move_to_end(incident_id)
        while len(self._reached) > _REACHED_KEPT:
            self._reached.popitem(last=False)


class PgTokens:
    """`TokenLookup` on the claims' pool; `general` answers on another event loop than
    the pool's, and when PostgreSQL errs (but not when the pool is exhausted: that is a
    503, not the slower path).

    The tokens asked for in one turn of the event loop (under load, the requests and
    websocket commands that arrived together) are looked up by one query, each caller
    getting its own row (`service.gathered`, one lookup in flight at a time): the
    database is still asked every time, so a revoked token is refused at once."""

    def __init__(
        self, pool: AsyncConnectionPool, general: TokenLookup, clock: Callable[[], datetime]
    ) -> None:
        self.pool = pool
        self.general = general
        self.loop = asyncio.get_running_loop()
        self.clock = clock
        self._by_hash: Gathered[object, Row | None] = Gathered(self._rows(_ACTORS_OF_HASHES))
        self._by_id: Gathered[object, Row | None] = Gathered(self._rows(_ACTORS_OF_IDS))

    def usable(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop and not self.pool.closed
        except RuntimeError:
            return False

    async def actor_for_secret(self, secret: str) -> Actor | None:
        if self.usable():
            found, row = await self._row(self._by_hash, hash_token(secret))
            if found:
                return _actor_of(row)
        return await self.general.actor_for_secret(secret)

    async def actor_for_token_id(self, token_id: int) -> Actor | None:
        if self.usable():
            found, row = await self._row(self._by_id, token_id)
            if found:
                return _actor_of(row)
        return await self.general.actor_for_token_id(token_id)

    async def revoked_among(self, token_ids: set[int]) -> set[int]:
        # A periodic sweep, not on any caller's way: the general lookup serves.
        return await self.general.revoked_among(token_ids)

    def _rows(self, query: str) -> Callable[[list[object]], Awaitable[list[Row | None]]]:
        """One lookup of the tokens of `keys` by `query` (which takes `%(keys)s` and
        `%(now)s` and leads each row with its key): each key's row, or None."""

        async def rows(keys: list[object]) -> list[Row | None]:
            async with self.pool.connection() as conn:
                cur = await conn.execute(query, {"keys": list(set(keys)), "now": self.clock()})
                found = {row[0]: row[1:] for row in await cur.fetchall()}
            return [found.get(key) for key in keys]

        return rows

    @staticmethod
    async def _row(gathered: Gathered[object, Row | None], key: object) -> tuple[bool, Row | None]:
        """(True, the token's row or None) from PostgreSQL; (False, None) when it erred
        and the general lookup is to answer. An exhausted pool is raised (a 503)."""
        try:
            return True, await gathered(key)
        except PoolTimeout:
            raise
        except psycopg.Error as exc:
            log.info("token lookup taking the general path: %r", exc)
            return False, None


def _actor_of(row: tuple[Any, ...] | None) -> Actor | None:
    if row is None:
        return None
    token_id, role, city_id, scopes = row
    return Actor(role=Role(role), city_id=city_id, token_id=token_id, scopes=parse_scopes(scopes))


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
    # (package id, resource) -> the package's item, with its package's city, name and
    # availability
    items: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    # request id -> (claimed_quantity, status) as read, for the write's condition
    touched: dict[int, tuple[int, str]] = field(default_factory=dict)
    # item id -> its committed units as read, for the write's condition
    items_touched: dict[int, int] = field(default_factory=dict)
    seq_before: dict[int, int] = field(default_factory=dict)
    claims: list[tuple[_Ask, ClaimPublic, EventPublic]] = field(default_factory=list)

    def decide(self, ask: _Ask) -> Answer | DomainError | None:
        """The claim core's decision on the request as the claims before left it."""
        request = self.requests.get(ask.request_id)
        if request is None:
            return None  # not found: the general command says so
        incident = self.incidents[request["incident_id"]]
        earlier = self.earlier.get((ask.city_id, ask.key))
        rings = {int(city): ring for city, ring in (request["target_rings"] or {}).items()}
        target = rules.ClaimTarget(
            city_id=request["city_id"],
            ring=request["ring"],
            tally=_tally_of(request),
            incident_status=lc.IncidentStatus(incident["status"]),
        )
        try:
            decision = rules.decide_claim(
                target,
                rules.ClaimAsk(ask.city_id, ask.body.quantity, ask.print_),
                city_ring=rings.get(ask.city_id),
                earlier_fingerprint=earlier["body_fingerprint"] if earlier else None,
            )
        except DomainError as refused:
            return refused
        if isinstance(decision, rules.Replay):
            assert earlier is not None
            return ClaimPublic.model_validate(earlier), False, []
        if isinstance(decision, rules.OutOfReach):
            return None  # refused; the general command explains why (404 or 403)
        if request["has_open_offers"] and decision.after.status is lc.RequestStatus.CLAIMED:
            return None  # it fills the request: the general command answers its offers
        package = None
        if ask.body.package_id is not None:
            item = self.items.get((ask.body.package_id, request["resource"]))
            if (
                item is None
                or item["city_id"] != ask.city_id
                or not roster_rules.available_now(
                    item["available"], item["unavailable_until"], ask.now
                )
            ):
                return None  # refused; the general command says why (404, 409 or 422)
            try:
                package = self._commit(item, ask.body.quantity)
            except DomainError as refused:
                return refused

        self.touched.setdefault(request["id"], (request["claimed_quantity"], request["status"]))
        self.seq_before.setdefault(incident["id"], incident["last_seq"])
        after = {
            **request,
            "claimed_quantity": decision.after.claimed_quantity,
            "status": decision.after.status.value,
            "updated_at": ask.now,
        }
        self.requests[request["id"]] = after
        incident["last_seq"] += 1
        public_after = request_public_of(
            {k: v for k, v in after.items() if k not in _READ_ONLY_COLUMNS}
        )
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
            expires_at=rules.claim_expires_at(ask.now, incident["claim_acceptance_timeout_s"]),
            package_id=ask.body.package_id,
        )
        data: dict[str, Any] = {"claim": as_json(claim), "request": as_json(public_after)}
        if package is not None:
            data["package"] = package
        event = EventPublic(
            event_id=str(uuid.uuid4()),
            incident_id=incident["id"],
            seq=incident["last_seq"],
            type=EventType.CLAIM_MADE.value,
            occurred_at=ask.now,
            actor_role=ask.actor.event_role,
            actor_city_id=ask.city_id,
            actor_user_id=ask.actor.user_id,
            actor_name=ask.actor.display_name,
            data=data,
            audience={
                "cities": audience_of(public_after, rings),
                "viewers": self.viewers[incident["id"]],
            },
        )
        self.claims.append((ask, claim, event))
        return claim, True, [event]

    def _commit(self, item: dict[str, Any], quantity: int) -> dict[str, Any]:
        """Commit `quantity` of the item's units as the claims before left it (the rule of
        `commands.rosters.commit_from_package`); the package's state for the event."""
        before = roster_rules.ItemTally(
            item["quantity"], item["cap_quantity"], item["committed_quantity"]
        )
        after = roster_rules.commit_units(before, quantity, package_name=item["name"])
        self.items_touched.setdefault(item["id"], before.committed_quantity)
        item["committed_quantity"] = after.committed_quantity
        return roster_rules.package_state(
            package_id=item["package_id"],
            city_id=item["city_id"],
            name=item["name"],
            resource=item["resource"],
            tally=after,
        )

    def write_args(self) -> dict[str, Any]:
        requests = [
            {
                "id": request_id,
                "claimed": after["claimed_quantity"],
                "status": after["status"],
                "at": after["updated_at"],
                "claimed_before": before[0],
                "status_before": before[1],
                "ring": after["ring"],
            }
            for request_id, before in self.touched.items()
            for after in (self.requests[request_id],)
        ]
        claims = [
            {
                "id": claim.id,
                "request_id": claim.request_id,
                "incident_id": claim.incident_id,
                "city_id": claim.city_id,
                "quantity": claim.quantity,
                "status": claim.status,
                "note": claim.note,
                "key": ask.key,
                "fingerprint": ask.print_,
                "token_id": ask.actor.token_id,
                "at": claim.created_at,
                "expires_at": claim.expires_at,
                "package_id": claim.package_id,
            }
            for ask, claim, _ in self.claims
        ]
        items = [
            {
                "id": item["id"],
                "committed": item["committed_quantity"],
                "committed_before": before,
                "cap": item["cap_quantity"],
            }
            for item in self.items.values()
            for before in (self.items_touched.get(item["id"]),)
            if before is not None
        ]
        events = [
            {
                "event_id": event.event_id,
                "incident_id": event.incident_id,
                "seq": event.seq,
                "type": event.type,
                "at": event.occurred_at,
                "token_id": ask.actor.token_id,
                "city_id": event.actor_city_id,
                "role": event.actor_role,
                "user_id": event.actor_user_id,
                "name": event.actor_name,
                "data": event.data,
                "audience": event.audience,
            }
            for ask, _, event in self.claims
        ]
        incidents = [
            {"id": i, "before": before, "last": self.incidents[i]["last_seq"]}
            for i, before in self.seq_before.items()
        ]
        return {
            "claimable": _CLAIMABLE,
            **{
                name: orjson.dumps(rows).decode()
                for name, rows in (
                    ("requests", requests),
                    ("claims", claims),
                    ("events", events),
                    ("incidents", incidents),
                    ("items", items),
                )
            },
        }


def _tally_of(request: Mapping[str, Any]) -> rules.Tally:
    return rules.Tally(
        quantity=request["quantity"],
        claimed_quantity=request["claimed_quantity"],
        delivered_quantity=request["delivered_quantity"],
        status=lc.RequestStatus(request["status"]),
    )
