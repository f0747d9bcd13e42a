"""Claims on PostgreSQL in two round trips, outside the ORM.

Claiming is what many responders do at once. The general command
(`claims.claim_request`) runs nine statements through SQLAlchemy's ORM in a worker
thread. This path applies the same rules (the same functions) over an async
psycopg connection, in one transaction of two round trips:

1. lock the incident (FOR UPDATE, as every command that touches its requests does),
   then read the request, its target rings, an earlier claim with this idempotency
   key and a fresh claim id, pipelined behind it;
2. check the rules in Python and, when the claim may go ahead, write the request's
   new quantity, the claim, its event (with the incident's viewers) and the
   incident's next seq in one statement, and commit.

The write still only applies when the request is exactly as it was read, so the
database stays the arbiter. Whenever this path cannot answer by itself (a refusal
that needs more reading to explain, a changed row, a database error, a lost
unique-key race) it returns None and the caller runs the general command, which
then answers — both paths give the same answers, rows and events.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy.engine import make_url

from service.commands.admin import hash_token
from service.commands.claims import check_claimable, fingerprint
from service.commands.context import audience_of, require_city
from service.commands.presenters import as_json, request_public_of
from service.domain import lifecycles as lc
from service.domain.actors import Actor, Role
from service.domain.events import EventType
from service.domain.quantities import check_claim_fits
from service.models import ClaimCreate, ClaimPublic, EventPublic
from service.persistence.tables import AidRequest
from service.settings import Settings

log = logging.getLogger(__name__)

_REQUEST_COLUMNS = ", ".join(AidRequest.__table__.columns.keys())  # type: ignore[attr-defined]
_CLAIMABLE = [s.value for s in lc.CLAIMABLE_REQUEST_STATUSES]

_LOCK = """
SELECT id, city_id, status, last_seq, claim_acceptance_timeout_s FROM incidents
 WHERE id = (SELECT incident_id FROM aid_requests WHERE id = %(request_id)s)
   FOR UPDATE"""
# The request as it is once the incident is locked, the rings of its targets, an
# earlier claim of the caller's city with this key, and the id the claim will take.
_READ = f"""
SELECT {", ".join("r." + c for c in _REQUEST_COLUMNS.split(", "))},
       (SELECT json_object_agg(t.city_id, t.ring) FROM request_targets t
         WHERE t.request_id = r.id) AS target_rings,
       (SELECT row_to_json(c) FROM claims c
         WHERE c.city_id = %(city_id)s AND c.idempotency_key = %(key)s) AS earlier,
       nextval(pg_get_serial_sequence('claims', 'id')) AS new_claim_id
  FROM aid_requests r WHERE r.id = %(request_id)s"""  # noqa: S608

# Every part applies only if the request is still exactly as read (the incident lock
# makes that certain; the condition keeps the database the arbiter regardless).
_WRITE = """
WITH taken AS (
    UPDATE aid_requests
       SET claimed_quantity = %(claimed)s, status = %(status)s, updated_at = %(now)s
     WHERE id = %(request_id)s AND claimed_quantity = %(claimed_before)s
       AND status = %(status_before)s AND status = ANY(%(claimable)s) AND ring = %(ring)s
       AND %(claimed)s <= quantity
    RETURNING id
), claim AS (
    INSERT INTO claims (id, request_id, incident_id, city_id, quantity, status, note, answer,
                        idempotency_key, body_fingerprint, claimed_by_token_id,
                        created_at, updated_at, expires_at)
    SELECT %(claim_id)s, %(request_id)s, %(incident_id)s, %(city_id)s, %(quantity)s,
           %(claim_status)s, %(note)s, NULL, %(key)s, %(fingerprint)s, %(token_id)s,
           %(now)s, %(now)s, %(expires_at)s
      FROM taken
    RETURNING id
), viewers AS (
    -- `incident_viewers`: the incident's city, its networks' cities, and the cities
    -- its requests reach now.
    SELECT %(incident_city_id)s::integer AS city_id
    UNION
    SELECT m.city_id FROM network_memberships m
     WHERE m.network_id IN (SELECT network_id FROM network_memberships
                             WHERE city_id = %(incident_city_id)s)
    UNION
    SELECT t.city_id FROM request_targets t JOIN aid_requests r ON r.id = t.request_id
     WHERE r.incident_id = %(incident_id)s AND t.ring <= r.ring
), event AS (
    INSERT INTO events (event_id, incident_id, seq, type, occurred_at, actor_token_id,
                        actor_city_id, actor_role, data, audience)
    SELECT %(event_id)s, %(incident_id)s, %(seq)s, %(type)s, %(now)s, %(token_id)s,
           %(city_id)s, %(role)s, %(data)s::json,
           json_build_object('cities', %(cities)s::json,
                             'viewers', (SELECT json_agg(city_id ORDER BY city_id) FROM viewers))
      FROM claim
    RETURNING audience
)
UPDATE incidents SET last_seq = %(seq)s
 WHERE id = %(incident_id)s AND last_seq = %(seq)s - 1 AND EXISTS (SELECT 1 FROM event)
RETURNING (SELECT audience FROM event)"""

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


class PgClaims:
    """The claim command and token lookup over an async connection pool of one event loop."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self.loop = asyncio.get_running_loop()

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
    ) -> tuple[ClaimPublic, bool, list[EventPublic]] | None:
        """Claim as `claims.claim_request` does, or None for the general command to answer.
        Refusals the rules give from what was read are raised here, as the command does."""
        city_id = require_city(actor, Role.RESPONDER, Role.MANAGER)
        try:
            return await self._claim(actor, city_id, request_id, body, key, now)
        except PoolTimeout:
            raise  # overloaded: 503, not the slower path
        except psycopg.Error as exc:
            # Unique-key race, deadlock, lost connection, timeout: the general command
            # retries or reports it as the service always does.
            log.info("claim on request %d taking the general path: %r", request_id, exc)
            return None

    async def _claim(
        self,
        actor: Actor,
        city_id: int,
        request_id: int,
        body: ClaimCreate,
        key: str,
        now: datetime,
    ) -> tuple[ClaimPublic, bool, list[EventPublic]] | None:
        print_ = fingerprint(request_id, body)
        async with self.pool.connection() as conn, conn.pipeline(), conn.transaction():
            args = {"request_id": request_id, "city_id": city_id, "key": key}
            lock = await conn.cursor(row_factory=dict_row).execute(_LOCK, args)
            read = await conn.cursor(row_factory=dict_row).execute(_READ, args)
            incident, request = await lock.fetchone(), await read.fetchone()
            if incident is None or request is None:
                return None  # not found: the general command says so
            rings = {int(city): ring for city, ring in (request.pop("target_rings") or {}).items()}
            earlier, claim_id = request.pop("earlier"), request.pop("new_claim_id")

            if earlier is not None:
                if earlier["body_fingerprint"] != print_:
                    return None  # the general command refuses the reused key
                return ClaimPublic.model_validate(earlier), False, []
            ring = rings.get(city_id)
            if ring is None or ring > request["ring"]:
                return None  # refused; the general command explains why (404 or 403)
            check_claimable(incident["status"], request["status"])
            check_claim_fits(request["quantity"], request["claimed_quantity"], body.quantity)

            after = _request_after(request, body.quantity, now)
            public_after = request_public_of(after)
            claim = ClaimPublic(
                id=claim_id,
                request_id=request_id,
                incident_id=incident["id"],
                city_id=city_id,
                quantity=body.quantity,
                status=lc.ClaimStatus.CLAIMED.value,
                note=body.note,
                answer=None,
                created_at=now,
                updated_at=now,
                expires_at=now + timedelta(seconds=incident["claim_acceptance_timeout_s"]),
            )
            data = {"claim": as_json(claim), "request": as_json(public_after)}
            cities = audience_of(public_after, rings)
            event = {
                "event_id": str(uuid.uuid4()),
                "incident_id": incident["id"],
                "seq": incident["last_seq"] + 1,
                "type": EventType.CLAIM_MADE.value,
                "occurred_at": now,
                "actor_role": actor.event_role,
                "actor_city_id": city_id,
                "data": data,
            }
            written = await conn.execute(
                _WRITE,
                {
                    **args,
                    "claimed": after["claimed_quantity"],
                    "status": after["status"],
                    "claimed_before": request["claimed_quantity"],
                    "status_before": request["status"],
                    "claimable": _CLAIMABLE,
                    "ring": request["ring"],
                    "now": now,
                    "claim_id": claim.id,
                    "incident_id": incident["id"],
                    "quantity": body.quantity,
                    "claim_status": claim.status,
                    "note": body.note,
                    "fingerprint": print_,
                    "token_id": actor.token_id,
                    "expires_at": claim.expires_at,
                    "event_id": event["event_id"],
                    "incident_city_id": incident["city_id"],
                    "seq": event["seq"],
                    "type": event["type"],
                    "role": event["actor_role"],
                    "data": orjson.dumps(data).decode(),
                    "cities": orjson.dumps(cities).decode(),
                },
            )
        # The transaction committed when the block ended; did the write apply?
        row = await written.fetchone()
        if row is None:
            return None  # the request changed under us: let the general command decide
        return claim, True, [EventPublic(**event, audience=row[0])]


def _request_after(request: Mapping[str, Any], quantity: int, now: datetime) -> dict[str, Any]:
    """The request row as the claim leaves it (as `claims._take_units` writes it)."""
    claimed = request["claimed_quantity"] + quantity
    status = lc.request_status_for(request["quantity"], claimed, request["delivered_quantity"])
    return {**request, "claimed_quantity": claimed, "status": status.value, "updated_at": now}
