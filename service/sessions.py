"""Session lookup: the seam through which REST and the websocket learn which signed-in
person a session cookie speaks for (tokens go through `service.tokens`)."""

from __future__ import annotations

from service.commands import accounts
from service.commands.context import CommandContext
from service.domain.actors import SYSTEM, Actor
from service.executor import Executor

SESSION_COOKIE = "aidmesh_session"
CSRF_COOKIE = "aidmesh_csrf"
CSRF_HEADER = "x-csrf-token"
SESSION_SHAPE_MAX = 100


def session_shaped(secret: str) -> bool:
    """A cookie that could be a session id at all (anything else is refused unread)."""
    return (
        secret.startswith(accounts.SESSION_PREFIX)
        and len(secret) <= SESSION_SHAPE_MAX
        and secret.isascii()
    )


class Sessions:
    """Sessions in the database, read through the executor (its clock, its pool)."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    async def by_secret(self, secret: str) -> accounts.SessionActor | None:
        """The session's actor and CSRF token; None for an unknown, ended or expired one.
        Its last-seen time moves on (written down only now and then)."""
        if not session_shaped(secret):
            return None
        found = await self.executor.read(SYSTEM, _by_secret, secret)
        if found is not None and found.stale:
            assert found.actor.session_id is not None
            await self.executor.run(SYSTEM, accounts.touch_session, found.actor.session_id)
        return found

    async def actor_by_id(self, session_id: int) -> Actor | None:
        """The actor of a live session known by id (a socket asking again before a command)."""
        found = await self.executor.read(SYSTEM, _by_id, session_id)
        return None if found is None else found.actor

    async def ended_among(self, session_ids: set[int]) -> set[int]:
        return await self.executor.read(SYSTEM, accounts.ended_among, session_ids)


def _by_secret(ctx: CommandContext, secret: str) -> accounts.SessionActor | None:
    return accounts.actor_for_session(ctx, secret=secret)


def _by_id(ctx: CommandContext, session_id: int) -> accounts.SessionActor | None:
    return accounts.actor_for_session(ctx, session_id=session_id)
