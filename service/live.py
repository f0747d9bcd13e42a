"""The service's side of the realtime gateway: authentication, scope checks, replay and
the events table, over the same queries as the REST API (its command ops are in
`service.live_ops`).

Errors are answered as the edge contract (`service.edge`) maps them: a database that
cannot answer is a `Refusal` (503) for the gateway, as it is a JSON 503 over REST;
the client gets an error frame and keeps its socket."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, TypeVar

from anyio import to_thread
from sqlalchemy import ColumnElement, and_, or_
from sqlmodel import Session, col, select

from realtime.connection import Viewer
from realtime.envelope import encode
from realtime.index import Scope
from realtime.protocol import Refusal
from service import edge
from service.commands.context import visible_incident
from service.domain.actors import Actor, Role
from service.domain.errors import DomainError
from service.executor import Executor
from service.models import EventPublic
from service.persistence.db import Database
from service.persistence.tables import Incident
from service.queries import incident_detail, incident_visibility, stored_events_after
from service.sessions import Sessions
from service.tickets import TicketStore

T = TypeVar("T")


def viewer_of(actor: Actor) -> Viewer:
    return Viewer(
        role=actor.role.value,
        city_id=actor.city_id,
        token_id=actor.token_id,
        is_admin=actor.is_admin,
        session_id=actor.session_id,
        user_id=actor.user_id,
        display_name=actor.display_name,
        scopes=actor.scopes,
    )


def actor_of(viewer: Viewer) -> Actor:
    return Actor(
        role=Role(viewer.role),
        city_id=viewer.city_id,
        token_id=viewer.token_id,
        user_id=viewer.user_id,
        display_name=viewer.display_name,
        session_id=viewer.session_id,
        scopes=viewer.scopes,
    )


class LiveService:
    """Implements `realtime.ws_endpoint.Authority` and `realtime.gateway.EventStore`."""

    def __init__(
        self,
        db: Database,
        executor: Executor,
        tickets: TicketStore,
        replay_window: int,
        sessions: Sessions | None = None,
    ) -> None:
        self.db = db
        self.executor = executor
        self.tickets = tickets
        self.replay_window = replay_window
        self.sessions = sessions or Sessions(executor)

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

    async def ended_sessions_among(self, session_ids: set[int]) -> set[int]:
        return await self.sessions.ended_among(session_ids)

    # Authority -----------------------------------------------------------------------

    async def authenticate(self, token: str | None, ticket: str | None) -> Viewer | None:
        if ticket is not None:
            token_id = await _answerable(self.tickets.redeem(ticket))
            if token_id is None:
                return None
            # A token revoked after its ticket was issued is refused here.
            by_id = await _answerable(self.executor.tokens.actor_for_token_id(token_id))
            return viewer_of(by_id) if by_id else None
        if token is None or not edge.token_shaped(token):
            return None
        actor = await _answerable(self.executor.tokens.actor_for_secret(token))
        return viewer_of(actor) if actor else None

    async def authenticate_session(self, session: str) -> Viewer | None:
        found = await _answerable(self.sessions.by_secret(session))
        # A session that may only enrol a second factor has no board to watch.
        return viewer_of(found.actor) if found and not found.actor.enrol_only else None

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
                    return edge.status_for(exc), str(exc)
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


def refusal_of(answer: edge.Answer) -> Refusal:
    """The websocket error frame of an edge answer: its status, detail, code and params."""
    return Refusal(answer.status, answer.detail, answer.code, answer.params)


def refuse_unknown_fields(document: Mapping[str, Any], known: Collection[str]) -> Refusal | None:
    """The endpoint's rule for fields no op takes: the 422 a REST body with them gets."""
    issues = edge.unknown_fields(document, known)
    return refusal_of(edge.validation_answer(issues)) if issues else None


async def _in_thread(read: Callable[..., T], *args: Any) -> T:
    """`read(*args)` in a worker thread, its database failures as a `Refusal`."""
    return await _answerable(to_thread.run_sync(read, *args))


async def _answerable(pending: Awaitable[T]) -> T:
    """Await `pending`; an error the edge contract maps (a database that cannot answer,
    503; any other database error, 500) becomes a `Refusal`, so the client always
    gets an error frame."""
    try:
        return await pending
    except Exception as exc:
        answer = edge.answer_for(exc, "a websocket")
        if answer is None:
            raise
        raise refusal_of(answer) from None


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
