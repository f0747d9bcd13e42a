"""Token lookup: the one seam through which REST and the websocket learn who is calling.

`TokenLookup` is the interface; `DatabaseTokens` reads the ORM in a worker thread and
serves every backend. `create_app` may wrap it in a faster implementation of the same
interface (`service.adapters.pg_claims.PgTokens` on PostgreSQL).
"""

from __future__ import annotations

from typing import Protocol

from anyio import to_thread
from sqlmodel import col, select

from service.commands.admin import actor_for_token
from service.domain.actors import Actor, Role
from service.persistence.db import Database
from service.persistence.tables import ApiToken


class TokenLookup(Protocol):
    """Who holds a token; None for an unknown or revoked one."""

    async def actor_for_secret(self, secret: str) -> Actor | None:
        """The actor of a bearer token's secret (REST headers, the websocket's auth)."""
        ...

    async def actor_for_token_id(self, token_id: int) -> Actor | None:
        """The actor of a token known by id (a redeemed ticket, a long-lived socket
        asking again before each command: the token may have been revoked since)."""
        ...

    async def revoked_among(self, token_ids: set[int]) -> set[int]:
        """Those of `token_ids` revoked by now (the gateway's sweep of open sockets)."""
        ...


class DatabaseTokens:
    """`TokenLookup` over the ORM, in a worker thread."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def actor_for_secret(self, secret: str) -> Actor | None:
        return await to_thread.run_sync(self._by_secret, secret)

    async def actor_for_token_id(self, token_id: int) -> Actor | None:
        return await to_thread.run_sync(self._by_id, token_id)

    async def revoked_among(self, token_ids: set[int]) -> set[int]:
        return await to_thread.run_sync(self._revoked_among, token_ids)

    def _by_secret(self, secret: str) -> Actor | None:
        with self.db.read() as session:
            return actor_for_token(session, secret)

    def _by_id(self, token_id: int) -> Actor | None:
        with self.db.read() as session:
            token = session.get(ApiToken, token_id)
            if token is None or token.revoked_at is not None:
                return None
            return Actor(role=Role(token.role), city_id=token.city_id, token_id=token.id)

    def _revoked_among(self, token_ids: set[int]) -> set[int]:
        with self.db.read() as session:
            rows = session.exec(
                select(ApiToken.id).where(
                    col(ApiToken.id).in_(sorted(token_ids)),
                    col(ApiToken.revoked_at).is_not(None),
                )
            ).all()
            return {int(i) for i in rows if i is not None}
