"""The service's side of the realtime gateway: authentication, scope checks, replay and
websocket commands, over the same queries and command layer as the REST API."""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from anyio import to_thread
from pydantic import ValidationError
from sqlmodel import Session, col, select

from realtime.envelope import encode
from realtime.gateway import Scope, Viewer
from realtime.ws_endpoint import error as _error
from service.api.errors import BUSY, POOL_EXHAUSTED, status_for, validation_detail
from service.commands import claims
from service.commands.admin import actor_for_token
from service.commands.context import visible_incident
from service.commands.presenters import claim_public
from service.domain.actors import Actor, Role
from service.domain.errors import DomainError
from service.executor import Executor
from service.models import ClaimCreate, ClaimStatusChange, EventPublic
from service.persistence.db import Database
from service.persistence.tables import ApiToken, Incident
from service.queries import incident_detail, incident_visibility, stored_events_after

log = logging.getLogger(__name__)


class TicketBook:
    """Short-lived single-use websocket tickets, so tokens stay out of URLs and access logs.

    Kept in Redis when the bus has it (any replica can redeem), else in memory.
    """

    def __init__(self, redis_client: Any | None, ttl_s: float) -> None:
        self._redis = redis_client
        self._ttl_s = ttl_s
        self._memory: dict[str, tuple[int, float]] = {}

    async def issue(self, token_id: int) -> str:
        ticket = "wst_" + secrets.token_urlsafe(24)
        if self._redis is not None:
            await self._redis.set(f"aidmesh:ticket:{ticket}", token_id, ex=int(self._ttl_s))
        else:
            self._forget_expired()
            self._memory[ticket] = (token_id, time.monotonic() + self._ttl_s)
        return ticket

    async def redeem(self, ticket: str) -> int | None:
        if len(ticket) > 100:
            return None
        if self._redis is not None:
            value = await self._redis.getdel(f"aidmesh:ticket:{ticket}")
            return int(value) if value is not None else None
        entry = self._memory.pop(ticket, None)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def _forget_expired(self) -> None:
        now = time.monotonic()
        for key in [k for k, (_, exp) in self._memory.items() if exp < now]:
            del self._memory[key]


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

    def __init__(self, db: Database, executor: Executor, tickets: TicketBook, replay_window: int):
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

    # Authority -----------------------------------------------------------------------

    async def authenticate(self, token: str | None, ticket: str | None) -> Viewer | None:
        if ticket is not None:
            token_id = await self.tickets.redeem(ticket)
            if token_id is None:
                return None
            return await to_thread.run_sync(self._viewer_by_token_id, token_id)
        if token is None or len(token) > 200 or not token.isascii():
            return None
        return await to_thread.run_sync(self._viewer_by_secret, token)

    def _viewer_by_secret(self, secret: str) -> Viewer | None:
        with self.db.read() as session:
            actor = actor_for_token(session, secret)
        return viewer_of(actor) if actor else None

    def _viewer_by_token_id(self, token_id: int) -> Viewer | None:
        with self.db.read() as session:
            token = session.get(ApiToken, token_id)
            if token is None or token.revoked_at is not None:
                return None
            return viewer_of(Actor(role=Role(token.role), city_id=token.city_id, token_id=token.id))

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

        return await to_thread.run_sync(check)

    async def replay(
        self, viewer: Viewer, scopes: set[Scope], since: dict[int, int]
    ) -> list[dict[str, Any]]:
        return await to_thread.run_sync(self._replay, viewer, scopes, since)

    def _replay(
        self, viewer: Viewer, scopes: set[Scope], since: dict[int, int]
    ) -> list[dict[str, Any]]:
        actor = actor_of(viewer)
        items: list[dict[str, Any]] = []
        with self.db.read() as session:
            for incident_id, wants in self._replay_plan(session, actor, scopes, since).items():
                incident = session.get(Incident, incident_id)
                if incident is None:
                    continue
                after = since.get(incident_id, 0)
                if incident.last_seq <= after:
                    continue
                if incident.last_seq - after > self.replay_window:
                    items.append(
                        {
                            "type": "reset",
                            "incident_id": incident_id,
                            "last_seq": incident.last_seq,
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
    ) -> dict[int, Any]:
        """incident id → a filter of its events, for every incident the scopes cover."""
        plan: dict[int, Any] = {}
        wide = [s for s in scopes if s.kind != "incident"]
        if wide:
            active = session.exec(
                select(Incident.id).where(
                    incident_visibility(actor), col(Incident.status) == "active"
                )
            ).all()
            candidates = {int(i) for i in active if i is not None} | set(since)
            for incident_id in candidates:
                plan[incident_id] = _audience_filter(actor, wide)
        for scope in scopes:
            if scope.kind == "incident" and scope.id is not None:
                plan[scope.id] = _everything
        return plan

    async def command(self, viewer: Viewer, op: str, message: dict[str, Any]) -> dict[str, Any]:
        actor = actor_of(viewer)
        try:
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
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 2_147_483_647:
        raise _BadField(f"{name}: a positive integer id")
    return value


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
