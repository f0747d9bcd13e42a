"""Websocket tickets: short-lived and single-use, so bearer tokens stay out of URLs and logs.

A browser cannot set a header on a websocket handshake; the page asks
`POST /api/v1/ws-ticket` with its token and opens `/ws?ticket=…`. The ticket store
is chosen in `create_app`: `DatabaseTickets`, in the database every replica
shares, so a ticket issued by one replica is redeemed by another, and the pages
still connect while Redis is down (replay works; live delivery returns with
Redis). Only a SHA-256 of each ticket is stored, and redeeming is one conditional
`DELETE … RETURNING`: of two redemptions at once, exactly one gets the token.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from anyio import to_thread
from sqlalchemy import delete
from sqlmodel import col

from service.persistence.db import Database
from service.persistence.tables import WsTicket

TICKET_PREFIX = "wst_"
_MAX_TICKET_CHARS = 100


class TicketStore(Protocol):
    """Issue a ticket for a token; redeem it once, for that token's id."""

    async def issue(self, token_id: int) -> str: ...

    async def redeem(self, ticket: str) -> int | None:
        """The token id of a live, unused ticket (which is used up), else None."""
        ...


def _hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


class DatabaseTickets:
    """Tickets as rows of `ws_tickets`; expired ones are swept when new ones are issued."""

    def __init__(self, db: Database, ttl_s: float, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.ttl = timedelta(seconds=ttl_s)
        self.clock = clock

    async def issue(self, token_id: int) -> str:
        ticket = TICKET_PREFIX + secrets.token_urlsafe(24)
        await to_thread.run_sync(self._store, _hash(ticket), token_id)
        return ticket

    def _store(self, ticket_hash: str, token_id: int) -> None:
        now = self.clock()
        with self.db.write() as session:
            # The sweep rides on an insert (an index range scan): no job of its own.
            session.execute(delete(WsTicket).where(col(WsTicket.expires_at) < now))
            ticket = WsTicket(ticket_hash=ticket_hash, token_id=token_id, expires_at=now + self.ttl)
            session.add(ticket)

    async def redeem(self, ticket: str) -> int | None:
        if len(ticket) > _MAX_TICKET_CHARS or not ticket.isascii():
            return None
        return await to_thread.run_sync(self._take, _hash(ticket))

    def _take(self, ticket_hash: str) -> int | None:
        with self.db.write() as session:
            token_id = session.execute(
                delete(WsTicket)
                .where(
                    col(WsTicket.ticket_hash) == ticket_hash,
                    col(WsTicket.expires_at) >= self.clock(),
                )
                .returning(col(WsTicket.token_id))
            ).scalar_one_or_none()
        return None if token_id is None else int(token_id)
