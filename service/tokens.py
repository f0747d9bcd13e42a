"""Token lookup: the one seam through which REST and the websocket learn who is calling.

`TokenLookup` is the interface; `DatabaseTokens` reads the ORM in a worker thread and
serves every backend. `create_app` may wrap it in a faster implementation of the same
interface (`service.adapters.pg_claims.PgTokens` on PostgreSQL), and wraps whichever
it uses in `Tracked`, which records each token's last use.

A token is refused once revoked or expired; its scopes travel on its actor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from anyio import to_thread
from sqlalchemy import or_, update
from sqlmodel import col, select

from service.commands.admin import actor_for_token, token_actor
from service.domain.actors import Actor
from service.domain.tokens import LAST_USED_EVERY
from service.persistence.db import Database
from service.persistence.tables import ApiToken

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TokenLookup(Protocol):
    """Who holds a token; None for an unknown, revoked or expired one."""

    async def actor_for_secret(self, secret: str) -> Actor | None:
        """The actor of a bearer token's secret (REST headers, the websocket's auth)."""
        ...

    async def actor_for_token_id(self, token_id: int) -> Actor | None:
        """The actor of a token known by id (a redeemed ticket, a long-lived socket
        asking again before each command: the token may have been revoked since)."""
        ...

    async def revoked_among(self, token_ids: set[int]) -> set[int]:
        """Those of `token_ids` revoked or expired by now (the gateway's sweep of open
        sockets)."""
        ...


class DatabaseTokens:
    """`TokenLookup` over the ORM, in a worker thread."""

    def __init__(self, db: Database, clock: Clock = _utc_now) -> None:
        self.db = db
        self.clock = clock

    async def actor_for_secret(self, secret: str) -> Actor | None:
        return await to_thread.run_sync(self._by_secret, secret)

    async def actor_for_token_id(self, token_id: int) -> Actor | None:
        return await to_thread.run_sync(self._by_id, token_id)

    async def revoked_among(self, token_ids: set[int]) -> set[int]:
        return await to_thread.run_sync(self._revoked_among, token_ids)

    def _by_secret(self, secret: str) -> Actor | None:
        with self.db.read() as session:
            return actor_for_token(session, secret, self.clock())

    def _by_id(self, token_id: int) -> Actor | None:
        with self.db.read() as session:
            token = session.get(ApiToken, token_id)
            return None if token is None else token_actor(token, self.clock())

    def _revoked_among(self, token_ids: set[int]) -> set[int]:
        with self.db.read() as session:
            rows = session.exec(
                select(ApiToken.id).where(
                    col(ApiToken.id).in_(sorted(token_ids)),
                    or_(
                        col(ApiToken.revoked_at).is_not(None),
                        col(ApiToken.expires_at) <= self.clock(),
                    ),
                )
            ).all()
            return {int(i) for i in rows if i is not None}


class LastUsed:
    """Records when tokens were last used without a write per request: each replica
    writes a token's `last_used_at` at most once a minute (remembered in memory), and
    the UPDATE itself only moves a value older than a minute, so replicas together
    write about once a minute per token in use. The time shown is thus up to a minute
    early."""

    def __init__(self, db: Database, clock: Clock = _utc_now) -> None:
        self.db = db
        self.clock = clock
        self._written: dict[int, datetime] = {}

    async def note(self, token_id: int) -> None:
        now = self.clock()
        last = self._written.get(token_id)
        if last is not None and now - last < LAST_USED_EVERY:
            return
        self._written[token_id] = now
        try:
            await to_thread.run_sync(self._write, token_id, now)
        except Exception as exc:  # a lost note must not refuse the caller
            log.warning("could not record token %s's last use: %r", token_id, exc)

    def _write(self, token_id: int, now: datetime) -> None:
        with self.db.write_connection() as conn:
            conn.execute(
                update(ApiToken)
                .where(
                    col(ApiToken.id) == token_id,
                    or_(
                        col(ApiToken.last_used_at).is_(None),
                        col(ApiToken.last_used_at) <= now - LAST_USED_EVERY,
                    ),
                )
                .values(last_used_at=now)
            )


class Tracked:
    """A `TokenLookup` that notes each found token's use (`LastUsed`)."""

    def __init__(self, lookup: TokenLookup, last_used: LastUsed) -> None:
        self.lookup = lookup
        self.last_used = last_used

    async def actor_for_secret(self, secret: str) -> Actor | None:
        actor = await self.lookup.actor_for_secret(secret)
        if actor is not None and actor.token_id is not None:
            await self.last_used.note(actor.token_id)
        return actor

    async def actor_for_token_id(self, token_id: int) -> Actor | None:
        actor = await self.lookup.actor_for_token_id(token_id)
        if actor is not None:
            await self.last_used.note(token_id)
        return actor

    async def revoked_among(self, token_ids: set[int]) -> set[int]:
        return await self.lookup.revoked_among(token_ids)
