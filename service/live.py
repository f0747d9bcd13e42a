"""The service's side of the realtime gateway: authentication, scope checks, replay and
websocket commands, over the same queries and command layer as the REST API.

A database that cannot answer is a `Refusal` (503) for the gateway, as it is a JSON
503 over REST: the client gets an error frame and keeps its socket."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from anyio import to_thread
from pydantic import ValidationError
from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session, col, select

from realtime.envelope import encode
from realtime.gateway import Scope, Viewer
from realtime.ws_endpoint import Refusal
from realtime.ws_endpoint import error as _error
from service.api.errors import BUSY, POOL_EXHAUSTED, status_for, validation_detail
from service.commands import claims
from service.commands.context import visible_incident
from service.commands.presenters import claim_public
from service.domain.actors import Actor, Role
from service.domain.errors import DomainError
from service.executor import Executor
from service.models import MAX_ID, ClaimCreate, ClaimStatusChange, EventPublic
from service.persistence.db import Database
from service.persistence.tables import Incident
from service.queries import incident_detail, incident_visibility, stored_events_after
from service.tickets import TicketStore

log = logging.getLogger(__name__)
T = TypeVar("T")
REVOKED = "invalid or revoked token"


def viewer_of(actor: Actor) -> Viewer:
    return Viewer(
        role=actor.role.value,
        city_id=actor.city_id,
        token_id=actor.token_id,
        is_admin=actor.is_admin,
        can_command=actor.role in (Role.MANAGER, Role.RESPONDER),
    )


def actor_of(viewer: Viewer) -> Actor:
    return Actor(role=Role(viewer.role), city_id=viewer.city_id, token_id=viewer.token_id)


class LiveService:
    """Implements `realtime.ws_endpoint.Authority` and `realtime.gateway.EventStore`."""

    def __init__(
        self, db: Database, executor: Executor, tickets: TicketStore, replay_window: int
    ) -> None:
        self.db = db
        self.executor = executor
        self.tickets = tickets
        self.replay_window = replay_window

    # EventStore ------------------------------------------------------------------

    async def last_seqs(self) -> dict[int, int]:
        def read() -> dict[int, int]:
            with self.db.read() as session:
                rows = session.exec(select(Incident.id, Incident.last_seq)).all()
                return {int(i): int(s) for i, s in rows if i is not None}

        return await to_thread.run_sync(read)

    async def events_after(self, incident_id: int, after: int) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            with self.db.read() as session:
                return _events_after(session, incident_id, after, limit=self.replay_window)

        return await to_thread.run_sync(read)

    async def revoked_among(self, token_ids: set[int]) -> set[int]:
        return await self.executor.tokens.revoked_among(token_ids)

    # Authority -----------------------------------------------------------------------

    async def authenticate(self, token: str | None, ticket: str | None) -> Viewer | None:
        if ticket is not None:
            token_id = await _answerable(self.tickets.redeem(ticket))
            if token_id is None:
                return None
            # A token revoked after its ticket was issued is refused here.
            by_id = await _answerable(self.executor.tokens.actor_for_token_id(token_id))
            return viewer_of(by_id) if by_id else None
        if token is None or len(token) > 200 or not token.isascii():
            return None
        actor = await _answerable(self.executor.tokens.actor_for_secret(token))
        return viewer_of(actor) if actor else None

    async def authorize(self, viewer: Viewer, scope: Scope) -> tuple[int, str] | None:
        if scope.kind == "board":
            return None
        if scope.kind == "city":
            if viewer.is_admin or viewer.city_id == scope.id:
                return None
            return 403, "a city's inbox is open only to that city's tokens"
        assert scope.id is not None
        incident_id = scope.id

        def check() -> tuple[int, str] | None:
            with self.db.read() as session:
                try:
                    visible_incident(session, actor_of(viewer), incident_id)
                except DomainError as exc:
                    return status_for(exc), str(exc)
            return None

        return await _in_thread(check)

    async def replay(
        self, viewer: Viewer, scopes: set[Scope], since: dict[int, int]
    ) -> list[dict[str, Any]]:
        return await _in_thread(self._replay, viewer, scopes, since)

    def _replay(
        self, viewer: Viewer, scopes: set[Scope], since: dict[int, int]
    ) -> list[dict[str, Any]]:
        actor = actor_of(viewer)
        items: list[dict[str, Any]] = []
        with self.db.read() as session:
            plan = self._replay_plan(session, actor, scopes, since)
            for incident_id, (last_seq, wants) in plan.items():
                after = since.get(incident_id, 0)
                if last_seq <= after:
                    continue
                if last_seq - after > self.replay_window:
                    items.append(
                        {
                            "type": "reset",
                            "incident_id": incident_id,
                            "last_seq": last_seq,
                            "snapshot": incident_detail(session, actor, incident_id).model_dump(
                                mode="json"
                            ),
                        }
                    )
                    continue
                for event in _events_after(session, incident_id, after, limit=self.replay_window):
                    if wants(event):
                        items.append({"event": event, "text": encode(event).decode()})
        return items

    def _replay_plan(
        self, session: Session, actor: Actor, scopes: set[Scope], since: dict[int, int]
    ) -> dict[int, tuple[int, Callable[[dict[str, Any]], bool]]]:
        """incident id → (its last seq, a filter of its events), for every incident the
        scopes cover, read in one query however many incidents `since` names."""
        scoped = sorted(s.id for s in scopes if s.kind == "incident" and s.id is not None)
        wide = [s for s in scopes if s.kind != "incident"]
        reach: list[ColumnElement[bool]] = [col(Incident.id).in_(scoped)] if scoped else []
        if wide:
            # The board and inboxes: the active incidents the caller sees, and those of
            # `since` it sees (closed since the client last heard, they have news).
            listed = or_(col(Incident.status) == "active", col(Incident.id).in_(sorted(since)))
            reach.append(and_(incident_visibility(actor), listed))
        if not reach:
            return {}
        rows = session.exec(select(Incident.id, Incident.last_seq).where(or_(*reach))).all()
        wants = _audience_filter(actor, wide)
        in_scope = set(scoped)
        return {
            int(i): (int(last), _everything if i in in_scope else wants)
            for i, last in rows
            if i is not None
        }

    async def command(self, viewer: Viewer, op: str, message: dict[str, Any]) -> dict[str, Any]:
        actor = actor_of(viewer)
        try:
            if viewer.token_id is None or not await self.executor.tokens.actor_for_token_id(
                viewer.token_id
            ):
                return _error(401, REVOKED)
            if op == "claim":
                request_id = _positive_int(message.get("request_id"), "request_id")
                key = message.get("idempotency_key")
                if not isinstance(key, str) or not 1 <= len(key) <= 200 or not key.isascii():
                    return _error(422, "idempotency_key: a string of 1-200 ASCII characters")
                body = ClaimCreate.model_validate(
                    {k: v for k, v in message.items() if k in ("quantity", "note")}
                )
                made, created = await self.executor.claim(actor, request_id, body, key)
                return {
                    "type": "ack",
                    "status": 201,
                    "replayed": not created,
                    "result": made.model_dump(mode="json"),
                }
            claim_id = _positive_int(message.get("claim_id"), "claim_id")
            change = ClaimStatusChange.model_validate(
                {k: v for k, v in message.items() if k in ("status", "note", "answer")}
            )
            claim = await self.executor.run(actor, claims.change_claim_status, claim_id, change)
            return {
                "type": "ack",
                "status": 200,
                "result": claim_public(claim).model_dump(mode="json"),
            }
        except _BadField as exc:
            return _error(422, str(exc))
        except ValidationError as exc:
            return _error(422, validation_detail(exc.errors()))
        except DomainError as exc:
            return _error(status_for(exc), exc.detail)
        except POOL_EXHAUSTED:
            log.warning("database pool exhausted on websocket %s", op)
            return _error(503, BUSY)
        except Exception:
            log.exception("websocket command %s failed", op)
            return _error(503, "the command could not be completed; retry")


class _BadField(ValueError):
    """A websocket command field of the wrong type or range (answered with a 422)."""


def _positive_int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_ID:
        raise _BadField(f"{name}: an integer id from 1 to {MAX_ID}")
    return value


_UNAVAILABLE = "the database is unavailable; retry shortly"


async def _in_thread(read: Callable[..., T], *args: Any) -> T:
    """`read(*args)` in a worker thread, its database failures as a `Refusal`."""
    return await _answerable(to_thread.run_sync(read, *args))


async def _answerable(pending: Awaitable[T]) -> T:
    """Await `pending`; a database that cannot answer becomes a `Refusal` (503), any
    other database error a logged 500, so the client always gets an error frame."""
    try:
        return await pending
    except POOL_EXHAUSTED:
        log.warning("database pool exhausted on a websocket")
        raise Refusal(503, BUSY) from None
    except OperationalError as exc:
        log.warning("database unavailable on a websocket: %s", exc.orig)
        raise Refusal(503, _UNAVAILABLE) from None
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise Refusal(503, "the database connection was lost; retry shortly") from None
        log.error("database error on a websocket", exc_info=exc)
        raise Refusal(500, "internal error") from None


def _events_after(
    session: Session, incident_id: int, after: int, limit: int
) -> list[dict[str, Any]]:
    return [
        EventPublic.model_validate(e).model_dump(mode="json")
        for e in stored_events_after(session, incident_id, after, limit)
    ]


def _everything(_: dict[str, Any]) -> bool:
    return True


def _audience_filter(actor: Actor, scopes: list[Scope]) -> Any:
    cities = {s.id for s in scopes if s.kind == "city"}
    board = any(s.kind == "board" for s in scopes)

    def wants(event: dict[str, Any]) -> bool:
        audience = event.get("audience") or {}
        if cities & set(audience.get("cities", ())):
            return True
        if board:
            return actor.is_admin or actor.city_id in audience.get("viewers", ())
        return False

    return wants
