"""The websocket gateway of one replica: connections, scopes, ordered gap-free fan-out.

Each event arrives once per replica (from the bus, or from the events table when
a gap is noticed), is serialised once, and the same text is handed to every
matching connection through its bounded queue. Fan-out never awaits a socket:
a connection whose queue is full is closed with a reason and resumes later.

Per incident the gateway dispatches seqs strictly in order. A seq that skips
ahead (a lost publish, a Redis restart) holds the incident back while the
missing events are read from the store; a periodic poll catches events whose
publish never happened at all (a crash between commit and publish).

Beside events the bus carries control messages (`realtime.control`): a revoked
token closes its connections on every replica, and stays refused here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import orjson

from realtime import control, metrics
from realtime.envelope import encode
from realtime.frames import DirectWriter, Outgoing

log = logging.getLogger(__name__)

_SCOPE = re.compile(r"^(?:(incident|city):([1-9][0-9]{0,18})|(board))$")

# How a delivery went (`Connection.deliver`).
NOT_SENT, QUEUED, DIRECT = 0, 1, 2

# Close codes sent to clients.
CLOSE_SLOW_CONSUMER = 1013  # try again later: resume with your last seqs
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_TRY_LATER = 1013  # also: a service the handshake needs is unavailable
CLOSE_REVOKED = 4001  # the connection's token was revoked (as HTTP's 401)
REVOKED_REASON = "token revoked"

# Revoked token ids each replica remembers, so a command on a revoked token is
# refused before it reaches the database (which refuses it anyway).
_REVOKED_REMEMBERED = 10_000


@dataclass(frozen=True, slots=True)
class Scope:
    kind: str  # "incident" | "city" | "board"
    id: int | None = None

    @classmethod
    def parse(cls, text: object, *, max_id: int) -> Scope:
        """The scope `text` names; `ValueError` with a message for the client if none,
        or if its id is beyond `max_id`."""
        if not isinstance(text, str):
            raise ValueError("a scope is a string like 'incident:12', 'city:3' or 'board'")
        match = _SCOPE.match(text)
        if match is None:
            raise ValueError(
                f"unknown scope {text[:40]!r}: use 'incident:<id>', 'city:<id>' or 'board'"
            )
        if match.group(3):
            return cls("board")
        scope_id = int(match.group(2))
        if scope_id > max_id:
            kind = match.group(1)
            raise ValueError(f"{kind} id {scope_id} is out of range: ids are 1 to {max_id}")
        return cls(match.group(1), scope_id)

    def __str__(self) -> str:
        return self.kind if self.id is None else f"{self.kind}:{self.id}"


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who holds a connection, as the gateway needs to know it."""

    role: str
    city_id: int | None
    token_id: int | None
    is_admin: bool = False
    can_command: bool = False


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


class Connection:
    """One client: its scopes, what it was last sent per incident, a bounded backlog.

    A socket whose peer keeps up takes an event's ready-made frame directly
    (`DirectWriter`), or else completes an ASGI send without suspending; either
    way the dispatcher does it at once, in place: no task and no queue per
    delivery. Only when a send suspends (the peer's buffer is full) does a task
    finish it, and what arrives meanwhile waits in the backlog behind it; a full
    backlog drops the client as a slow consumer. The backlog and the idle event
    exist only while needed: most connections never need them, and at 10,000
    connections their empty containers would cost megabytes.
    """

    __slots__ = (
        "_backlog",
        "_backlog_limit",
        "_busy",
        "_close",
        "_drainer",
        "_idle",
        "_pending_limit",
        "_send",
        "_writer",
        "closed_reason",
        "last_sent",
        "pending",
        "scopes",
        "viewer",
    )

    def __init__(
        self,
        viewer: Viewer,
        send: Callable[[str], Coroutine[Any, Any, None]],
        close: Callable[[int, str], Coroutine[Any, Any, None]],
        *,
        writer: DirectWriter | None = None,
        queue_size: int = 1024,
        pending_limit: int = 10_000,
    ) -> None:
        self.viewer = viewer
        self.scopes: set[Scope] = set()
        self.last_sent: dict[int, int] = {}
        self.pending: list[tuple[int, int, Outgoing]] | None = None
        self.closed_reason: str | None = None
        self._send = send
        self._close = close
        self._writer = writer
        self._pending_limit = pending_limit
        self._backlog: deque[Outgoing | str] | None = None
        self._backlog_limit = queue_size
        self._busy = False  # a send is suspended, or the backlog is being drained
        self._idle: asyncio.Event | None = None  # made when someone must wait for idle
        self._drainer: asyncio.Task[None] | None = None

    def deliver(self, incident_id: int, seq: int, message: Outgoing) -> int:
        """Hand one event to this connection without waiting (called by the dispatcher).
        Returns how it went: NOT_SENT, QUEUED (held or sent through ASGI) or DIRECT."""
        if self.closed_reason is not None:
            return NOT_SENT
        if self.pending is not None:
            if len(self.pending) >= self._pending_limit:
                self.drop(CLOSE_SLOW_CONSUMER, "too many events during replay; resume again")
                return NOT_SENT
            self.pending.append((incident_id, seq, message))
            return NOT_SENT  # counted when the replay ends and it is delivered
        last = self.last_sent.get(incident_id)
        if last is not None and seq <= last:
            return NOT_SENT
        sent = self._offer(message)
        if sent:
            self.last_sent[incident_id] = seq
        return sent

    def send_control(self, message: dict[str, Any]) -> None:
        self._offer(orjson.dumps(message).decode())

    def send_shared(self, message: Outgoing) -> None:
        """A control message built once for many connections (the heartbeat)."""
        self._offer(message)

    async def send_now(self, message: dict[str, Any] | str) -> None:
        """Send with back-pressure: for replies and replay, paced by this client alone."""
        text = message if isinstance(message, str) else orjson.dumps(message).decode()
        while self._busy:
            if self._idle is None:
                self._idle = asyncio.Event()
            await self._idle.wait()
        if self.closed_reason is not None:
            return
        self._set_busy()
        try:
            await self._send(text)
        except Exception as exc:
            self._broken(exc)
        finally:
            self._settle()

    def _offer(self, message: Outgoing | str) -> int:
        if self.closed_reason is not None:
            return NOT_SENT
        if self._busy:
            if self._backlog is None:
                self._backlog = deque()
            if len(self._backlog) >= self._backlog_limit:
                metrics.SLOW_CONSUMERS.inc()
                self.drop(
                    CLOSE_SLOW_CONSUMER, "slow consumer: reconnect and resume from your last seqs"
                )
                return NOT_SENT
            self._backlog.append(message)
            return QUEUED
        if isinstance(message, Outgoing):
            if self._writer is not None and self._writer.write(message.frame):
                return DIRECT
            message = message.text
        coro = self._send(message)
        try:
            suspended_on = coro.send(None)
        except StopIteration:
            return QUEUED
        except Exception as exc:
            self._broken(exc)
            return NOT_SENT
        self._set_busy()
        self._drainer = asyncio.get_running_loop().create_task(
            self._drain(_Resumed(coro, suspended_on))
        )
        return QUEUED

    async def _drain(self, suspended: _Resumed) -> None:
        try:
            await suspended
            while self._backlog and self.closed_reason is None:
                message = self._backlog.popleft()
                await self._send(message if isinstance(message, str) else message.text)
        except Exception as exc:
            self._broken(exc)
        finally:
            self._drainer = None
            self._settle()

    def _settle(self) -> None:
        """After a send: drain what queued behind it, or become idle."""
        if self._backlog and self.closed_reason is None:
            self._drainer = asyncio.get_running_loop().create_task(self._drain(_Resumed.done()))
            return
        self._backlog = None
        self._busy = False
        if self._idle is not None:
            self._idle.set()

    def _set_busy(self) -> None:
        self._busy = True
        if self._idle is not None:
            self._idle.clear()

    def _broken(self, exc: Exception) -> None:
        if self.closed_reason is None:
            self.closed_reason = f"send failed: {type(exc).__name__}"
            log.info("websocket of %s/%s gone: %s", self.viewer.role, self.viewer.city_id, exc)

    def start_replay(self) -> None:
        self.pending = []

    async def finish_replay(self) -> None:
        """Go live: send what arrived during the replay that the replay did not cover."""
        pending, self.pending = self.pending or [], None
        counts = Counter(self.deliver(incident_id, seq, m) for incident_id, seq, m in pending)
        _count_deliveries(counts[QUEUED], counts[DIRECT])

    def drop(self, code: int, reason: str) -> None:
        """Close from outside the reader (the dispatcher, a revocation): in a task."""
        if self._closing(reason):
            asyncio.get_running_loop().create_task(self._close(code, reason))

    async def close_now(self, code: int, reason: str) -> None:
        """Close from the reader: the close frame is out before the reader goes on, so
        the peer gets the code even if the endpoint returns right after."""
        if self._closing(reason):
            await self._close(code, reason)

    def _closing(self, reason: str) -> bool:
        if self.closed_reason is not None:
            return False
        self.closed_reason = reason
        log.info("closing websocket of %s/%s: %s", self.viewer.role, self.viewer.city_id, reason)
        return True

    def stop(self) -> None:
        """The socket is gone: stop any send still waiting on it."""
        self.closed_reason = self.closed_reason or "closed"
        if self._drainer is not None:
            self._drainer.cancel()


class _Resumed:
    """The rest of a coroutine that was started by hand and suspended, as an awaitable,
    so that a task can finish it (what Python 3.12 calls eager task execution)."""

    __slots__ = ("_coro", "_suspended_on")

    def __init__(self, coro: Coroutine[Any, Any, None] | None, suspended_on: Any) -> None:
        self._coro = coro
        self._suspended_on = suspended_on

    @classmethod
    def done(cls) -> _Resumed:
        return cls(None, None)

    def __await__(self) -> Generator[Any, Any, None]:
        coro, waiting_on = self._coro, self._suspended_on
        if coro is None:
            return
        while True:
            try:
                value = yield waiting_on
            except BaseException as exc:  # cancellation included: hand it to the coroutine
                try:
                    waiting_on = coro.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    waiting_on = coro.send(value)
                except StopIteration:
                    return


@dataclass
class _Incident:
    seen: int = 0
    filling: bool = False
    held: list[tuple[int, dict[str, Any], Outgoing]] = field(default_factory=list)
    behind_since_poll: bool = False
    reordering: bool = False  # a later seq is held while the one before it may be in flight


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
        self._by_incident: dict[int, set[Connection]] = {}
        self._by_city: dict[int, set[Connection]] = {}
        self._board_all: set[Connection] = set()
        self._board_by_city: dict[int, set[Connection]] = {}
        self._incidents: dict[int, _Incident] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._revoked: dict[int, None] = {}  # insertion-ordered, bounded

    # Lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        for incident_id, last in (await self.store.last_seqs()).items():
            self._incidents[incident_id] = _Incident(seen=last)
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
        return viewer.token_id is not None and viewer.token_id in self._revoked

    def revoke_token(self, token_id: int) -> int:
        """Close every connection of the token (4001) and refuse its commands from now
        on. Returns how many connections were closed."""
        self._revoked[token_id] = None
        while len(self._revoked) > _REVOKED_REMEMBERED:
            del self._revoked[next(iter(self._revoked))]
        closed = 0
        for conn in list(self.connections):
            if conn.viewer.token_id == token_id and conn.closed_reason is None:
                conn.drop(CLOSE_REVOKED, REVOKED_REASON)
                closed += 1
        if closed:
            log.info("token %d revoked: closed %d websocket(s)", token_id, closed)
        return closed

    def subscribe(self, conn: Connection, scope: Scope) -> None:
        conn.scopes.add(scope)
        self._index(conn, scope).add(conn)

    def unsubscribe(self, conn: Connection, scope: Scope) -> None:
        conn.scopes.discard(scope)
        self._index(conn, scope).discard(conn)

    def _index(self, conn: Connection, scope: Scope) -> set[Connection]:
        if scope.kind == "incident":
            assert scope.id is not None
            return self._by_incident.setdefault(scope.id, set())
        if scope.kind == "city":
            assert scope.id is not None
            return self._by_city.setdefault(scope.id, set())
        if conn.viewer.is_admin or conn.viewer.city_id is None:
            return self._board_all
        return self._board_by_city.setdefault(conn.viewer.city_id, set())

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
        self._accept(incident_id, seq, event, Outgoing(text))

    def _on_control(self, envelope: dict[str, Any]) -> None:
        token_id = control.revoked_token_id(envelope)
        if token_id is not None:
            self.revoke_token(token_id)
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
        targets = self._by_city.get(city_id, set()) | self._board_by_city.get(city_id, set())
        for conn in targets | self._board_all:
            conn.send_shared(text)

    def on_bus_reconnect(self) -> None:
        """After a lost bus connection, anything may have been missed: check every
        incident, and every connected token (a revocation may have been missed)."""
        self._spawn(self._check_all(force=True))
        self._spawn(self._check_tokens())

    async def _check_tokens(self) -> None:
        held = {c.viewer.token_id for c in self.connections if c.viewer.token_id is not None}
        if not held:
            return
        try:
            revoked = await self.store.revoked_among(held)
        except Exception as exc:
            log.warning("could not check the connected tokens for revocation: %s", exc)
            return
        for token_id in revoked:
            self.revoke_token(token_id)

    def _accept(self, incident_id: int, seq: int, event: dict[str, Any], text: Outgoing) -> None:
        state = self._incidents.setdefault(incident_id, _Incident())
        if state.filling:
            state.held.append((seq, event, text))
            return
        if seq <= state.seen:
            return
        if seq == state.seen + 1:
            self._dispatch(incident_id, seq, event, text)
            if state.held:
                self._release_held(incident_id, state)
            return
        state.held.append((seq, event, text))
        if not state.reordering:
            state.reordering = True
            asyncio.get_running_loop().call_later(
                self.reorder_grace_s, self._reorder_grace_over, incident_id
            )

    def _release_held(self, incident_id: int, state: _Incident) -> None:
        """Dispatch the held events that are next in order; keep the rest."""
        held, state.held = sorted(state.held, key=lambda h: h[0]), []
        for seq, event, text in held:
            if seq == state.seen + 1:
                self._dispatch(incident_id, seq, event, text)
            elif seq > state.seen + 1:
                state.held.append((seq, event, text))

    def _reorder_grace_over(self, incident_id: int) -> None:
        state = self._incidents[incident_id]
        state.reordering = False
        if state.held and not state.filling:
            state.filling = True
            self._spawn(self._fill(incident_id))

    async def _fill(self, incident_id: int) -> None:
        state = self._incidents[incident_id]
        try:
            for _attempt in range(5):
                events = await self.store.events_after(incident_id, state.seen)
                for event in events:
                    seq = int(event["seq"])
                    if seq == state.seen + 1:
                        metrics.GAP_FILLED.inc()
                        self._dispatch(incident_id, seq, event, Outgoing(encode(event).decode()))
                self._release_held(incident_id, state)
                if not state.held:
                    return
                await asyncio.sleep(0.05)
            log.error(
                "incident %d: could not fill up to seq %d from the store; the poll retries",
                incident_id,
                state.held[-1][0],
            )
            state.held.clear()
        except Exception:
            log.exception("gap fill of incident %d failed; the poll retries", incident_id)
        finally:
            state.filling = False

    def _dispatch(self, incident_id: int, seq: int, event: dict[str, Any], text: Outgoing) -> None:
        self._incidents[incident_id].seen = seq
        audience = event.get("audience") or {}
        targets = set(self._by_incident.get(incident_id, ()))
        for city_id in audience.get("cities", ()):
            targets |= self._by_city.get(city_id, set())
        targets |= self._board_all
        for city_id in audience.get("viewers", ()):
            targets |= self._board_by_city.get(city_id, set())
        queued = direct = 0
        for conn in targets:
            sent = conn.deliver(incident_id, seq, text)
            if sent == DIRECT:
                direct += 1
            elif sent == QUEUED:
                queued += 1
        _count_deliveries(queued, direct)
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
        """Fill every incident whose stored seq is ahead of what was dispatched.

        Unless forced, an incident must be behind on two polls in a row, so an
        event whose publish is merely in flight is not read twice.
        """
        for incident_id, last in (await self.store.last_seqs()).items():
            state = self._incidents.setdefault(incident_id, _Incident())
            if last <= state.seen or state.filling:
                state.behind_since_poll = False
                continue
            if force or state.behind_since_poll:
                state.filling = True
                self._spawn(self._fill(incident_id))
            state.behind_since_poll = not force

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _count_deliveries(queued: int, direct: int) -> None:
    """Once per event, not per socket: a metric increment takes a lock."""
    if queued or direct:
        metrics.EVENTS_FANNED_OUT.inc(queued + direct)
    if direct:
        metrics.FRAMES_WRITTEN_DIRECT.inc(direct)


def _observe_latency(event: dict[str, Any]) -> None:
    occurred = event.get("occurred_at")
    if not isinstance(occurred, str):
        return
    try:
        at = datetime.fromisoformat(occurred).timestamp()
    except ValueError:
        return
    metrics.FANOUT_LATENCY.observe(max(0.0, time.time() - at))
