"""The `/ws` endpoint: handshake checks, authentication, then a reader, a writer and a heartbeat.

Protocol (JSON text frames; every client op may carry a `ref` echoed in its reply):

    → {"op": "auth", "token": "amk_…"}              (unless connected with ?ticket=…)
    ← {"type": "welcome", "role": …, "city_id": …}
    → {"op": "subscribe", "scopes": ["incident:12", "city:3", "board"], "since": {"12": 40}}
    ← replayed events, or {"type": "reset", "incident_id": 12, "last_seq": …, "snapshot": {…}}
    ← {"type": "subscribed", "scopes": [...]}, then live {"type": "event", "event": {…}}
    → {"op": "claim", "request_id": 5, "quantity": 2, "idempotency_key": "…"}
    → {"op": "claim_status", "claim_id": 9, "status": "en_route"}
    ← {"type": "ack", "status": 201, "result": {…}} or {"type": "error", "status": 409, "detail": …}

With `since`, every incident in the scopes is replayed from the seq given (0 when
absent) before live events flow; without it, only live events are sent.

Input is read strictly, by the decoder the service injects (the same reader as its
REST bodies): a text frame that is not one UTF-8 JSON document with unique keys,
and any binary frame, is answered `{"type": "error", "status": 400, "detail": …}`
and the socket stays open. Before authentication the same rule holds, but a
socket cannot wait on: a first frame that is binary, unreadable or not an `auth`
op gets that error frame, then a close 1008. Ids (scope ids, `since` keys) are 1
to `Limits.max_id` and seqs 0 to it; `since` names at most
`Limits.max_since_keys` incidents; anything else is a 400 naming the field.
An op the service cannot serve now (its database is unavailable) is answered
with an error frame 503, never a dropped socket.

Closes, each with a close frame and a reason: 1009 for a frame over
`max_message_bytes`; 1008 for frames faster than `messages_per_s` (burst
`message_burst`) or a refused handshake; 4001 "token revoked" within a second
of the connection's token being revoked on any replica; 1013 for a client that
cannot keep up (resume with your last seqs) or a ticket that cannot be checked now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import orjson
from starlette.types import Receive, Send
from starlette.types import Scope as ASGIScope
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from realtime.frames import DirectWriter, Outgoing
from realtime.gateway import (
    CLOSE_POLICY,
    CLOSE_REVOKED,
    CLOSE_TOO_BIG,
    CLOSE_TRY_LATER,
    REVOKED_REASON,
    Connection,
    Gateway,
    Scope,
    Viewer,
)

log = logging.getLogger(__name__)

Decode = Callable[[str], Any]
"""Reads one text frame as a JSON document, or raises `ValueError` whose message
tells the client what is wrong with it."""

BINARY_REFUSED = "binary frames are not accepted: send each message as a JSON text frame"
AUTH_FIRST = "authenticate first: {op: auth, token}"


class Refusal(Exception):
    """What an `Authority` raises when it cannot serve a request (the database is
    unavailable, ...): the client gets an error frame with this status and detail,
    and the socket stays open."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Authority(Protocol):
    """What the gateway asks of the service: who is this, may they, what did they miss, do this.

    `authenticate`, `authorize` and `replay` raise `Refusal` when they cannot answer."""

    async def authenticate(self, token: str | None, ticket: str | None) -> Viewer | None: ...

    async def authorize(self, viewer: Viewer, scope: Scope) -> tuple[int, str] | None:
        """None when allowed, else (status, detail)."""
        ...

    async def replay(
        self, viewer: Viewer, scopes: set[Scope], since: dict[int, int]
    ) -> list[dict[str, Any]]:
        """Messages to send before going live: events in order, or resets with snapshots."""
        ...

    async def command(self, viewer: Viewer, op: str, message: dict[str, Any]) -> dict[str, Any]:
        """Run a command op; the reply is an `ack` or an `error` message. The token is
        checked again: one revoked since the handshake is answered 401."""
        ...


class Limits:
    def __init__(
        self,
        *,
        max_message_bytes: int = 64 * 1024,
        max_subscriptions: int = 100,
        queue_size: int = 1024,
        heartbeat_s: float = 20.0,
        auth_timeout_s: float = 10.0,
        messages_per_s: float = 50.0,
        message_burst: int = 200,
        allowed_origins: tuple[str, ...] = (),
        max_id: int = 2**31 - 1,
        max_since_keys: int = 1000,
    ) -> None:
        # `max_id` bounds every id a client names; the service passes its own (the
        # range of its database's integer ids).
        self.max_message_bytes = max_message_bytes
        self.max_subscriptions = max_subscriptions
        self.queue_size = queue_size
        self.heartbeat_s = heartbeat_s
        self.auth_timeout_s = auth_timeout_s
        self.messages_per_s = messages_per_s
        self.message_burst = message_burst
        self.allowed_origins = allowed_origins
        self.max_id = max_id
        self.max_since_keys = max_since_keys


def origin_allowed(websocket: WebSocket, allowed: tuple[str, ...]) -> bool:
    """Browsers send Origin; other clients do not. Same-origin pages and listed origins pass."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    if origin in allowed or "*" in allowed:
        return True
    host = websocket.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


class _Bucket:
    """A token bucket: `rate` messages per second with `burst` in hand."""

    __slots__ = ("at", "burst", "rate", "tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.at = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def error(status: int, detail: Any, ref: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "error", "status": status, "detail": detail}
    if ref is not None:
        message["ref"] = ref
    return message


# Called once per session when it ends: (scope, role, city_id, seconds, reason); role is
# None for a handshake refused.
SessionHook = Callable[[ASGIScope, str | None, int | None, float, str], None]


class WebsocketEndpoint:
    def __init__(
        self,
        gateway: Gateway,
        authority: Authority,
        limits: Limits,
        *,
        decode: Decode,
        on_session_end: SessionHook | None = None,
    ) -> None:
        self.gateway = gateway
        self.authority = authority
        self.limits = limits
        self.on_session_end = on_session_end
        self.decode = decode
        self._heartbeats: asyncio.Task[None] | None = None

    def asgi(self, scope: ASGIScope, receive: Receive, send: Send) -> Coroutine[Any, Any, None]:
        """Serve one websocket, called straight from the app's ASGI entry point.

        It runs ahead of the middleware stack and the router: their wrappers would sit
        in every send and in the memory of every long-lived connection, and this
        endpoint handles its own errors. The server's own `send` (uvicorn binds it to
        its protocol object) is kept in the scope: it leads to the transport, for
        aborting a peer that reads nothing (ASGI cannot) and for `DirectWriter`.
        """
        scope[_SERVER_SEND_KEY] = send
        # The coroutine itself, not awaited here: one frame fewer held per connection.
        return self._serve(WebSocket(scope, receive, send))

    async def _admit(self, websocket: WebSocket) -> Viewer | None:
        """The handshake: Origin, then a ticket or a first `auth` message. None if refused."""
        if not origin_allowed(websocket, self.limits.allowed_origins):
            # Refused before accept: the browser sees a failed handshake (HTTP 403).
            await websocket.close(code=CLOSE_POLICY, reason="origin not allowed")
            return None
        ticket = websocket.query_params.get("ticket")
        viewer = None
        if ticket is not None:
            try:
                viewer = await self.authority.authenticate(None, ticket)
            except Refusal as exc:
                await websocket.close(code=CLOSE_TRY_LATER, reason=_reason(exc.detail))
                return None
            if viewer is None:
                await websocket.close(code=CLOSE_POLICY, reason="invalid or used ticket")
                return None
        await websocket.accept()
        if viewer is None:
            viewer = await self._first_message_auth(websocket)
        return viewer

    async def _first_message_auth(self, websocket: WebSocket) -> Viewer | None:
        try:
            async with asyncio.timeout(self.limits.auth_timeout_s):
                frame = await websocket.receive()
        except (TimeoutError, WebSocketDisconnect, RuntimeError):
            await _close(websocket, CLOSE_POLICY, AUTH_FIRST)
            return None
        if frame["type"] == "websocket.disconnect":
            return None
        text = frame.get("text")
        if text is None:
            await self._refuse_auth(websocket, CLOSE_POLICY, BINARY_REFUSED)
            return None
        if _too_big(text, self.limits.max_message_bytes):
            await _close(websocket, CLOSE_TOO_BIG, self._too_big_reason())
            return None
        try:
            message = self.decode(text)
        except ValueError as exc:
            await self._refuse_auth(websocket, CLOSE_POLICY, str(exc))
            return None
        token = message.get("token") if isinstance(message, dict) else None
        if not (
            isinstance(message, dict) and message.get("op") == "auth" and isinstance(token, str)
        ):
            await self._refuse_auth(websocket, CLOSE_POLICY, AUTH_FIRST)
            return None
        try:
            viewer = await self.authority.authenticate(token, None)
        except Refusal as exc:
            await self._refuse_auth(websocket, CLOSE_TRY_LATER, exc.detail, exc.status)
            return None
        if viewer is None:
            await self._refuse_auth(websocket, CLOSE_POLICY, "invalid or revoked token", 401)
        return viewer

    async def _refuse_auth(
        self, websocket: WebSocket, code: int, detail: str, status: int = 400
    ) -> None:
        """An error frame with the whole detail, then a close (whose reason is short)."""
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            await websocket.send_text(orjson.dumps(error(status, detail)).decode())
        await _close(websocket, code, _reason(detail))

    def _too_big_reason(self) -> str:
        return f"message over {self.limits.max_message_bytes} bytes"

    async def _serve(self, websocket: WebSocket) -> None:
        started = time.monotonic()
        viewer = await self._admit(websocket)
        if viewer is None:
            if self.on_session_end is not None:
                elapsed_s = time.monotonic() - started
                self.on_session_end(websocket.scope, None, None, elapsed_s, "refused")
            return

        async def close(code: int, reason: str) -> None:
            await _close(websocket, code, reason)

        writer = DirectWriter.for_asgi_send(websocket.scope.get(_SERVER_SEND_KEY))
        if writer is not None:
            writer.release_handshake()
        conn = Connection(
            viewer,
            websocket.send_text,
            close,
            writer=writer,
            queue_size=self.limits.queue_size,
        )
        self.gateway.attach(conn)
        if self.gateway.is_revoked(viewer):
            # Revoked between the token check and attach: the revocation's close missed it.
            await conn.close_now(CLOSE_REVOKED, REVOKED_REASON)
        conn.send_control(
            {
                "type": "welcome",
                "role": viewer.role,
                "city_id": viewer.city_id,
                "heartbeat_s": self.limits.heartbeat_s,
            }
        )
        if self._heartbeats is None:
            self._heartbeats = asyncio.create_task(self._heartbeat())
        try:
            # Reading happens here, not in a function of its own: each frame of an
            # await chain is held by every idle connection.
            bucket = _Bucket(self.limits.messages_per_s, self.limits.message_burst)
            while True:
                frame = await websocket.receive()
                if frame["type"] == "websocket.disconnect":
                    return
                if conn.closed_reason is not None:
                    continue  # closing (revoked, too slow): read on until the peer's close
                text = frame.get("text")
                data = text if text is not None else frame.get("bytes")
                if data is None:
                    continue
                if _too_big(data, self.limits.max_message_bytes):
                    # Awaited here, so the close frame is out before this coroutine ends.
                    await conn.close_now(CLOSE_TOO_BIG, self._too_big_reason())
                    continue
                if not bucket.take():
                    await conn.close_now(CLOSE_POLICY, "too many messages: slow down")
                    continue
                if text is None:
                    await conn.send_now(error(400, BINARY_REFUSED))
                    continue
                try:
                    message = self.decode(text)
                except ValueError as exc:
                    await conn.send_now(error(400, str(exc)))
                    continue
                await self._handle(conn, message)
        except (WebSocketDisconnect, OSError):
            pass  # the peer went away: nobody to answer
        except RuntimeError:
            # Not a peer leaving (that is a disconnect frame, handled above): say so.
            log.warning(
                "websocket of %s/%s ended on an error", viewer.role, viewer.city_id, exc_info=True
            )
        finally:
            conn.stop()
            self.gateway.detach(conn)
            if self.on_session_end is not None:
                self.on_session_end(
                    websocket.scope,
                    viewer.role,
                    viewer.city_id,
                    time.monotonic() - started,
                    conn.closed_reason or "closed",
                )

    async def _heartbeat(self) -> None:
        """One beat for every connection of this replica, so clients can tell a dead socket."""
        while True:
            await asyncio.sleep(self.limits.heartbeat_s)
            beat = Outgoing(orjson.dumps({"type": "heartbeat", "at": time.time()}).decode())
            for conn in list(self.gateway.connections):
                conn.send_shared(beat)

    async def _handle(self, conn: Connection, message: Any) -> None:
        if not isinstance(message, dict):
            await conn.send_now(error(400, "each message is a JSON object with an 'op'"))
            return
        op, ref = message.get("op"), message.get("ref")
        if ref is not None and not isinstance(ref, str | int):
            ref = None
        try:
            reply = await self._answer(conn, op, message, ref)
        except Refusal as exc:
            reply = error(exc.status, exc.detail)
        except Exception:
            # A bug, not the client's doing: it gets an answer and keeps its socket.
            log.exception("websocket op %r failed", str(op)[:40])
            reply = error(500, "internal error")
        if reply is None:
            return
        if ref is not None:
            reply["ref"] = ref
        await conn.send_now(reply)

    async def _answer(
        self, conn: Connection, op: Any, message: dict[str, Any], ref: Any
    ) -> dict[str, Any] | None:
        """The reply to one op (None when the op sent its own)."""
        if op == "ping":
            return {"type": "pong"}
        if op == "subscribe":
            await self._subscribe(conn, message, ref)
            return None
        if op == "unsubscribe":
            return self._unsubscribe(conn, message)
        if op in ("claim", "claim_status"):
            if self.gateway.is_revoked(conn.viewer):
                return error(401, "invalid or revoked token")
            if not conn.viewer.can_command:
                return error(403, f"a {conn.viewer.role} token cannot send commands")
            return await self.authority.command(conn.viewer, op, message)
        if op == "auth":
            return error(400, "already authenticated")
        return error(400, "unknown op: use subscribe, unsubscribe, claim, claim_status or ping")

    async def _subscribe(self, conn: Connection, message: dict[str, Any], ref: Any) -> None:
        raw_scopes = message.get("scopes")
        if not isinstance(raw_scopes, list) or not raw_scopes:
            await conn.send_now(error(400, "'scopes' must be a non-empty list", ref))
            return
        if len(conn.scopes) + len(raw_scopes) > self.limits.max_subscriptions:
            await conn.send_now(
                error(429, f"at most {self.limits.max_subscriptions} scopes per connection", ref)
            )
            return
        since = _parse_since(message.get("since"), self.limits.max_id, self.limits.max_since_keys)
        if isinstance(since, str):
            await conn.send_now(error(400, since, ref))
            return
        scopes: set[Scope] = set()
        for raw in raw_scopes:
            try:
                scope = Scope.parse(raw, max_id=self.limits.max_id)
            except ValueError as exc:
                await conn.send_now(error(400, str(exc), ref))
                return
            refusal = await self.authority.authorize(conn.viewer, scope)
            if refusal is not None:
                await conn.send_now(error(refusal[0], refusal[1], ref))
                return
            scopes.add(scope)

        # Register for live events first, then replay, then drain what arrived
        # meanwhile: nothing falls between replay and live, nothing is sent twice.
        added = scopes - conn.scopes
        conn.start_replay()
        for incident_id, seq in (since or {}).items():
            # What the client already has is never sent again, even if this replica
            # has not dispatched it yet.
            conn.last_sent[incident_id] = max(conn.last_sent.get(incident_id, 0), seq)
        for scope in scopes:
            self.gateway.subscribe(conn, scope)
        try:
            if since is not None:
                for item in await self.authority.replay(conn.viewer, scopes, since):
                    await self._send_replayed(conn, item)
        except BaseException:
            # No replay, no subscription: live events without it would leave a gap.
            for scope in added:
                self.gateway.unsubscribe(conn, scope)
            raise
        finally:
            await conn.finish_replay()
        reply: dict[str, Any] = {
            "type": "subscribed",
            "scopes": sorted(str(s) for s in conn.scopes),
        }
        if ref is not None:
            reply["ref"] = ref
        await conn.send_now(reply)

    async def _send_replayed(self, conn: Connection, item: dict[str, Any]) -> None:
        if item.get("type") == "reset":
            incident_id, last = int(item["incident_id"]), int(item["last_seq"])
            conn.last_sent[incident_id] = max(conn.last_sent.get(incident_id, 0), last)
            await conn.send_now(item)
            return
        event = item["event"]
        incident_id, seq = int(event["incident_id"]), int(event["seq"])
        if seq <= conn.last_sent.get(incident_id, 0):
            return
        conn.last_sent[incident_id] = seq
        await conn.send_now(item["text"])

    def _unsubscribe(self, conn: Connection, message: dict[str, Any]) -> dict[str, Any]:
        raw_scopes = message.get("scopes")
        if not isinstance(raw_scopes, list):
            return error(400, "'scopes' must be a list")
        for raw in raw_scopes:
            try:
                self.gateway.unsubscribe(conn, Scope.parse(raw, max_id=self.limits.max_id))
            except ValueError as exc:
                return error(400, str(exc))
        return {"type": "unsubscribed", "scopes": sorted(str(s) for s in conn.scopes)}


def _too_big(data: str | bytes, limit: int) -> bool:
    """Over `limit` bytes; text is measured in characters first, encoded only when it
    could be over (a character is at most 4 bytes of UTF-8)."""
    if len(data) > limit:
        return True
    return isinstance(data, str) and len(data) * 4 > limit and len(data.encode()) > limit


_SINCE_KEY = re.compile(r"[1-9][0-9]{0,18}")


def _parse_since(value: Any, max_id: int, max_keys: int) -> dict[int, int] | str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        return "'since' maps incident ids to the last seq seen, e.g. {\"12\": 40}"
    if len(value) > max_keys:
        return f"'since' names at most {max_keys} incidents; subscribe in parts"
    since: dict[int, int] = {}
    for key, seq in value.items():
        if not _SINCE_KEY.fullmatch(key) or int(key) > max_id:
            return f"'since' key {key[:24]!r} is not an incident id (1 to {max_id})"
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= max_id:
            return f"'since' values are seqs: integers from 0 to {max_id}"
        since[int(key)] = seq
    return since


def _reason(detail: str) -> str:
    """A close reason: at most 123 bytes of UTF-8 (RFC 6455, 5.5)."""
    encoded = detail.encode()
    if len(encoded) <= 123:
        return detail
    return encoded[:120].decode(errors="ignore") + "..."


async def _close(websocket: WebSocket, code: int, reason: str, timeout_s: float = 2.0) -> None:
    """Close with a code and reason; a peer that reads nothing cannot take the close
    frame either, so after `timeout_s` the transport is aborted."""
    if websocket.application_state == WebSocketState.DISCONNECTED:
        return
    try:
        async with asyncio.timeout(timeout_s):
            await websocket.close(code=code, reason=_reason(reason))
    except TimeoutError:
        _abort(websocket)
    except (RuntimeError, OSError):
        pass  # already closed or gone: the close was moot


_SERVER_SEND_KEY = "aidmesh.server_send"


def _abort(websocket: WebSocket) -> None:
    """Drop the TCP connection under a websocket whose peer stopped reading."""
    protocol = getattr(websocket.scope.get(_SERVER_SEND_KEY), "__self__", None)
    transport = getattr(protocol, "transport", None)
    if transport is not None:
        log.info("aborting a websocket whose peer does not read")
        transport.abort()
