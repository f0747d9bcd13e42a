"""One websocket client as the gateway sees it: who holds it, what it was last sent per
incident, and a bounded backlog behind a send that suspended.

Fan-out hands every connection the same ready-made frame without awaiting a socket:
`Connection.deliver` writes it at once, or queues it behind a suspended send, or drops
the client as a slow consumer when its backlog is full.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any

import orjson

from realtime import metrics
from realtime.frames import DirectWriter, Outgoing
from realtime.index import Scope

log = logging.getLogger(__name__)

# How a delivery went (`Connection.deliver`).
NOT_SENT, QUEUED, DIRECT = 0, 1, 2

# Close codes sent to clients.
CLOSE_SLOW_CONSUMER = 1013  # try again later: resume with your last seqs
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_TRY_LATER = 1013  # also: a service the handshake needs is unavailable
CLOSE_REVOKED = 4001  # the connection's token was revoked (as HTTP's 401)
REVOKED_REASON = "token revoked"
ROTATED_REASON = "token rotated"
SIGNED_OUT_REASON = "signed out"  # the same close for a session that ended


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who holds a connection, as the gateway needs to know it."""

    role: str
    city_id: int | None
    token_id: int | None
    is_admin: bool = False
    # A signed-in person's session (None for a token), and who the person is.
    session_id: int | None = None
    user_id: int | None = None
    display_name: str | None = None
    # A token's scopes, if it has any (what its commands may be).
    scopes: frozenset[str] | None = None


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
        count_deliveries(counts[QUEUED], counts[DIRECT])

    def drop(self, code: int, reason: str) -> None:
        """Close from outside the socket loop (the dispatcher, a revocation): in a task."""
        if self._closing(reason):
            asyncio.get_running_loop().create_task(self._close(code, reason))

    async def close_now(self, code: int, reason: str) -> None:
        """Close from the socket loop: the close frame is out before the loop reads on, so
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


def count_deliveries(queued: int, direct: int) -> None:
    """Once per event, not per socket: a metric increment takes a lock."""
    if queued or direct:
        metrics.EVENTS_FANNED_OUT.inc(queued + direct)
    if direct:
        metrics.FRAMES_WRITTEN_DIRECT.inc(direct)
