"""The websocket gateway of one replica: connections, scopes, ordered gap-free fan-out.

Each event arrives once per replica (from the bus, or from the events table when
a gap is noticed), is serialised once, and the same text is handed to every
matching connection (`realtime.connection`) found in the scope index
(`realtime.index`). Fan-out never awaits a socket: a connection that cannot keep up
is closed with a reason and resumes later.

The order of each incident's events is decided by a `Sequencer`
(`realtime.sequencer`); the gateway carries its decisions out: dispatches, the
grace timer, reads of the store, and a periodic check that catches events whose
publish never happened at all (a crash between commit and publish).

Beside events the bus carries control messages (`realtime.control`): a revoked
token closes its connections on every replica, and stays refused here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

import orjson

from realtime import control, metrics
from realtime.connection import (
    CLOSE_REVOKED,
    DIRECT,
    QUEUED,
    REVOKED_REASON,
    ROTATED_REASON,
    SIGNED_OUT_REASON,
    Connection,
    Viewer,
    count_deliveries,
)
from realtime.envelope import encode
from realtime.frames import Outgoing
from realtime.index import Scope, ScopeIndex
from realtime.sequencer import Sequencer, Step

# What the rest of the service and the tests know the gateway by.
__all__ = [
    "CLOSE_REVOKED",
    "QUEUED",
    "REVOKED_REASON",
    "Connection",
    "EventStore",
    "Gateway",
    "Scope",
    "Viewer",
]

log = logging.getLogger(__name__)

# Revoked token ids each replica remembers, so a command on a revoked token is
# refused before it reaches the database (which refuses it anyway).
_REVOKED_REMEMBERED = 10_000

# An event as the sequencer holds it: the event, and its frame when it came from the
# bus (a filled one is framed when dispatched).
Item = tuple[dict[str, Any], Outgoing | None]

# Store reads per gap before it is left to the periodic check.
_FILL_ATTEMPTS = 5
_FILL_RETRY_S = 0.05


class EventStore(Protocol):
    """The durable record the gateway fills gaps from (the events table)."""

    async def last_seqs(self) -> dict[int, int]:
        """Every incident's newest seq."""
        ...

    async def events_after(self, incident_id: int, after: int) -> list[dict[str, Any]]:
        """Events of the incident with seq > after, in order, as JSON-ready dicts."""
        ...

    async def revoked_among(self, token_ids: set[int]) -> set[int]:
        """Those of `token_ids` that are revoked (after a lost bus connection, when
        revocations may have been missed)."""
        ...

    async def ended_sessions_among(self, session_ids: set[int]) -> set[int]:
        """Those of `session_ids` that have ended (after a lost bus connection)."""
        ...


class Gateway:
    def __init__(
        self,
        store: EventStore,
        *,
        gap_poll_interval_s: float = 0.5,
        reorder_grace_s: float = 0.02,
    ) -> None:
        self.store = store
        self.gap_poll_interval_s = gap_poll_interval_s
        # Replicas publish in commit order, but two commits of one incident a moment
        # apart (or two replicas) can reach the bus the other way round. A seq that
        # arrives early waits this long for the one before it before the store is read.
        self.reorder_grace_s = reorder_grace_s
        self.connections: set[Connection] = set()
        self._index: ScopeIndex[Connection] = ScopeIndex()
        self._order: Sequencer[Item] = Sequencer()
        self._tasks: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._revoked: dict[int, None] = {}  # insertion-ordered, bounded
        self._ended_sessions: dict[int, None] = {}  # the same, for signed-out sessions

    # Lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        self._order = Sequencer(await self.store.last_seqs())
        self._poller = asyncio.create_task(self._poll(), name="gateway-gap-poll")

    async def close(self) -> None:
        tasks = [*self._tasks, *([self._poller] if self._poller else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # Connections -----------------------------------------------------------------

    def attach(self, conn: Connection) -> None:
        self.connections.add(conn)
        metrics.CONNECTED.set(len(self.connections))

    def close_all(self, code: int, reason: str) -> int:
        """Close every connection with `code` (e.g. 1012 when the replica shuts down);
        returns how many were open."""
        conns = list(self.connections)
        for conn in conns:
            conn.drop(code, reason)
        return len(conns)

    def detach(self, conn: Connection) -> None:
        self.connections.discard(conn)
        for scope in list(conn.scopes):
            self.unsubscribe(conn, scope)
        metrics.CONNECTED.set(len(self.connections))

    def is_revoked(self, viewer: Viewer) -> bool:
        if viewer.session_id is not None:
            return viewer.session_id in self._ended_sessions
        return viewer.token_id is not None and viewer.token_id in self._revoked

    def end_sessions(self, session_ids: list[int]) -> int:
        """Close every connection of these sessions (4001: signed out, or the person was
        disabled). Returns how many connections were closed."""
        ended = set(session_ids)
        closed = self._cut_off(self._ended_sessions, ended, _session_of, SIGNED_OUT_REASON)
        if closed:
            log.info("%d session(s) ended: closed %d websocket(s)", len(ended), closed)
        return closed

    def revoke_token(self, token_id: int) -> int:
        """Close every connection of the token (4001) and refuse its commands from now
        on. Returns how many connections were closed."""
        closed = self._cut_off(self._revoked, {token_id}, _token_of, REVOKED_REASON)
        if closed:
            log.info("token %d revoked: closed %d websocket(s)", token_id, closed)
        return closed

    def close_token(self, token_id: int) -> int:
        """Close every connection of a rotated token (4001 "token rotated"): they were
        opened with the old secret. The token itself stays valid."""
        closed = 0
        for conn in list(self.connections):
            if _token_of(conn.viewer) == token_id and conn.closed_reason is None:
                conn.drop(CLOSE_REVOKED, ROTATED_REASON)
                closed += 1
        if closed:
            log.info("token %d rotated: closed %d websocket(s)", token_id, closed)
        return closed

    def _cut_off(
        self,
        remembered: dict[int, None],
        ids: set[int],
        credential: Callable[[Viewer], int | None],
        reason: str,
    ) -> int:
        """Remember `ids` as ended (a bounded, insertion-ordered set that `is_revoked`
        reads) and close every open connection whose credential is among them."""
        for credential_id in ids:
            remembered[credential_id] = None
        while len(remembered) > _REVOKED_REMEMBERED:
            del remembered[next(iter(remembered))]
        closed = 0
        for conn in list(self.connections):
            if credential(conn.viewer) in ids and conn.closed_reason is None:
                conn.drop(CLOSE_REVOKED, reason)
                closed += 1
        return closed

    def subscribe(self, conn: Connection, scope: Scope) -> None:
        self._index.add(conn, scope)

    def unsubscribe(self, conn: Connection, scope: Scope) -> None:
        self._index.discard(conn, scope)

    # Incoming events ---------------------------------------------------------------

    def on_bus_message(self, message: bytes) -> None:
        """The bus listener: parse once, then accept in per-incident seq order."""
        try:
            envelope = orjson.loads(message)
            if envelope.get("type") == "notice":
                self._notice(envelope, message)
                return
            event = envelope.get("event")
            if event is None:
                self._on_control(envelope)
                return
            incident_id, seq = int(event["incident_id"]), int(event["seq"])
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
            log.warning("dropping a malformed bus message (%d bytes)", len(message))
            return
        metrics.EVENTS_RECEIVED.inc()
        text = message.decode() if isinstance(message, bytes) else str(message)
        self._carry_out(incident_id, self._order.accept(incident_id, seq, (event, Outgoing(text))))

    def _on_control(self, envelope: dict[str, Any]) -> None:
        token_id = control.revoked_token_id(envelope)
        rotated = control.rotated_token_id(envelope)
        session_ids = control.ended_session_ids(envelope)
        if token_id is not None:
            self.revoke_token(token_id)
        elif rotated is not None:
            self.close_token(rotated)
        elif session_ids is not None:
            self.end_sessions(session_ids)
        else:
            log.warning("ignoring an unknown control message: %.100r", envelope)

    def _notice(self, envelope: dict[str, Any], message: bytes) -> None:
        """A city's notice outside any incident (a webhook endpoint disabled): to the
        connections on that city's scope and on the board for that city, at most once
        (no seq; the record is elsewhere, e.g. the endpoint's status)."""
        try:
            city_id = int(envelope["notice"]["city_id"])
        except (KeyError, TypeError, ValueError):
            log.warning("dropping a malformed notice (%d bytes)", len(message))
            return
        text = Outgoing(message.decode() if isinstance(message, bytes) else str(message))
        for conn in self._index.for_notice(city_id):
            conn.send_shared(text)

    def on_bus_reconnect(self) -> None:
        """After a lost bus connection, anything may have been missed: check every
        incident, and every connected token (a revocation may have been missed)."""
        self._spawn(self._check_all(force=True))
        self._spawn(self._check_tokens())
        self._spawn(self._check_sessions())

    async def _check_sessions(self) -> None:
        ended = await self._ended_among(_session_of, self.store.ended_sessions_among, "sessions")
        if ended:
            self.end_sessions(sorted(ended))

    async def _check_tokens(self) -> None:
        for token_id in await self._ended_among(_token_of, self.store.revoked_among, "tokens"):
            self.revoke_token(token_id)

    async def _ended_among(
        self,
        credential: Callable[[Viewer], int | None],
        ended_among: Callable[[set[int]], Awaitable[set[int]]],
        what: str,
    ) -> set[int]:
        """Which credentials held by open connections the store says have ended."""
        held = {c for c in (credential(conn.viewer) for conn in self.connections) if c is not None}
        if not held:
            return set()
        try:
            return await ended_among(held)
        except Exception as exc:
            log.warning("could not check the connected %s: %s", what, exc)
            return set()

    # Carrying out the sequencer's decisions -------------------------------------------

    def _carry_out(self, incident_id: int, step: Step[Item]) -> None:
        for seq, (event, text) in step.dispatch:
            if text is None:  # read from the store
                metrics.GAP_FILLED.inc()
                text = Outgoing(encode(event).decode())
            self._dispatch(incident_id, seq, event, text)
        if step.wait:
            asyncio.get_running_loop().call_later(
                self.reorder_grace_s, self._grace_over, incident_id
            )

    def _grace_over(self, incident_id: int) -> None:
        if self._order.grace_over(incident_id).fill:
            self._spawn(self._fill(incident_id))

    async def _fill(self, incident_id: int) -> None:
        gave_up = False
        try:
            for _attempt in range(_FILL_ATTEMPTS):
                events = await self.store.events_after(incident_id, self._order.seen(incident_id))
                step = self._order.filled(incident_id, [(int(e["seq"]), (e, None)) for e in events])
                self._carry_out(incident_id, step)
                if not step.fill:
                    return
                await asyncio.sleep(_FILL_RETRY_S)
            gave_up = True
        except Exception:
            log.exception("gap fill of incident %d failed; the poll retries", incident_id)
        finally:
            dropped = self._order.fill_ended(incident_id, gave_up=gave_up)
            if dropped is not None:
                log.error(
                    "incident %d: could not fill up to seq %d from the store; the poll retries",
                    incident_id,
                    dropped,
                )

    def _dispatch(self, incident_id: int, seq: int, event: dict[str, Any], text: Outgoing) -> None:
        targets = self._index.for_event(incident_id, event.get("audience") or {})
        queued = direct = 0
        for conn in targets:
            sent = conn.deliver(incident_id, seq, text)
            if sent == DIRECT:
                direct += 1
            elif sent == QUEUED:
                queued += 1
        count_deliveries(queued, direct)
        _observe_latency(event)

    # The safety net -------------------------------------------------------------------

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.gap_poll_interval_s)
            try:
                await self._check_all(force=False)
            except Exception as exc:
                log.warning("gap poll failed: %s", exc)

    async def _check_all(self, *, force: bool) -> None:
        """Fill every incident whose stored seq is ahead of what was dispatched."""
        for incident_id in self._order.check(await self.store.last_seqs(), force=force):
            self._spawn(self._fill(incident_id))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _observe_latency(event: dict[str, Any]) -> None:
    occurred = event.get("occurred_at")
    if not isinstance(occurred, str):
        return
    try:
        at = datetime.fromisoformat(occurred).timestamp()
    except ValueError:
        return
    metrics.FANOUT_LATENCY.observe(max(0.0, time.time() - at))


def _token_of(viewer: Viewer) -> int | None:
    return viewer.token_id


def _session_of(viewer: Viewer) -> int | None:
    return viewer.session_id
