"""The `/ws` endpoint: the handshake and the socket loop. The loop reads frames and
answers each op (parsed by `realtime.protocol`) in turn; events reach the socket from
the gateway's dispatch, outside this loop, and one heartbeat task serves every socket.

Protocol (JSON text frames; every client op may carry a `ref` echoed in its reply).
Beside the protocol's own ops, the service registers its command ops (`Op`, by
name) when it wires the endpoint; this package names none of them.

    → {"op": "auth", "token": "amk_…"}   (unless connected with ?ticket=… or a session cookie)
    ← {"type": "welcome", "role": …, "city_id": …}
    → {"op": "subscribe", "scopes": ["incident:12", "city:3", "board"], "since": {"12": 40}}
    ← replayed events, or {"type": "reset", "incident_id": 12, "last_seq": …, "snapshot": {…}}
    ← {"type": "subscribed", "scopes": [...]}, then live {"type": "event", "event": {…}}
    → {"op": <a command op of the service>, <its fields>…}
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
A field an op does not take is a 422 naming the field, as in a REST body. An op
the service cannot serve now (its database is unavailable) is answered with an
error frame 503, never a dropped socket.

Closes, each with a close frame and a reason: 1009 for a frame over
`max_message_bytes`; 1008 for frames faster than `messages_per_s` (burst
`message_burst`) or a refused handshake; 4001 "token revoked" within a second
of the connection's token being revoked on any replica, and 4001 "signed out" when
its session ends (sign-out, sign-out everywhere, the person disabled); 1013 for a client that
cannot keep up (resume with your last seqs) or a ticket that cannot be checked now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol

import orjson
from starlette.types import Receive, Send
from starlette.types import Scope as ASGIScope
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from realtime.connection import (
    CLOSE_POLICY,
    CLOSE_REVOKED,
    CLOSE_TOO_BIG,
    CLOSE_TRY_LATER,
    REVOKED_REASON,
    Connection,
    Viewer,
)
from realtime.frames import DirectWriter, Outgoing
from realtime.gateway import Gateway
from realtime.index import Scope
from realtime.protocol import (
    AUTH_FIRST,
    NOT_AN_OBJECT,
    OWN_OPS,
    Op,
    Refusal,
    Request,
    UnknownFields,
    auth_token,
    error,
    read_ref,
    read_request,
    read_scopes,
    read_subscribe,
)

# What the service and the tests know the endpoint's protocol by.
__all__ = [
    "AUTH_FIRST",
    "BINARY_REFUSED",
    "Authority",
    "Limits",
    "Op",
    "Refusal",
    "WebsocketEndpoint",
    "error",
]

log = logging.getLogger(__name__)

Decode = Callable[[str], Any]
"""Reads one text frame as a JSON document, or raises `ValueError` whose message
tells the client what is wrong with it."""

BINARY_REFUSED = "binary frames are not accepted: send each message as a JSON text frame"


class Authority(Protocol):
    """What the endpoint asks of the service: who is this, may they, what did they miss.

    Each raises `Refusal` when it cannot answer. (What they may do, the service says
    by the command ops it registers.)"""

    async def authenticate(self, token: str | None, ticket: str | None) -> Viewer | None: ...

    async def authenticate_session(self, session: str) -> Viewer | None:
        """The viewer of a browser's session cookie (asked only when the endpoint's
        `Limits.session_cookie` names the cookie); None for an ended or unknown one."""
        ...

    async def authorize(self, viewer: Viewer, scope: Scope) -> tuple[int, str] | None:
        """None when allowed, else (status, detail)."""
        ...

    async def replay(
        self, viewer: Viewer, scopes: set[Scope], since: dict[int, int]
    ) -> list[dict[str, Any]]:
        """Messages to send before going live: events in order, or resets with snapshots."""
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
        session_cookie: str | None = None,
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
        # The cookie a signed-in browser's handshake carries (None: cookies are ignored).
        self.session_cookie = session_cookie


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
        unknown_fields: UnknownFields,
        ops: Mapping[str, Op] | None = None,
        on_session_end: SessionHook | None = None,
    ) -> None:
        """`decode` reads a frame and `unknown_fields` finds the fields no op takes, by
        the service's rules; `ops` are the service's command ops by name."""
        self.ops: dict[str, Op] = dict(ops or {})
        clash = set(self.ops) & {*OWN_OPS, "auth"}
        if clash:
            raise ValueError(f"ops {sorted(clash)} are the protocol's own")
        self.gateway = gateway
        self.authority = authority
        self.limits = limits
        self.on_session_end = on_session_end
        self.decode = decode
        self.unknown_fields = unknown_fields
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
        cookie = None
        if self.limits.session_cookie is not None:
            cookie = websocket.cookies.get(self.limits.session_cookie)
        viewer = None
        if ticket is None and cookie:
            # A browser's session: its Origin was checked above, so a page of another
            # site cannot ride on the cookie.
            try:
                viewer = await self.authority.authenticate_session(cookie)
            except Refusal as exc:
                await websocket.close(code=CLOSE_TRY_LATER, reason=_reason(exc.detail))
                return None
            if viewer is None:
                await websocket.close(code=CLOSE_POLICY, reason="session expired or signed out")
                return None
        elif ticket is not None:
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
        token = auth_token(message)
        if token is None:
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
            await conn.send_now(error(400, NOT_AN_OBJECT))
            return
        ref = read_ref(message)
        try:
            request = read_request(message, self.ops, self.unknown_fields)
            reply = await self._answer(conn, request)
        except Refusal as exc:
            reply = exc.frame()
        except Exception:
            # A bug, not the client's doing: it gets an answer and keeps its socket.
            log.exception("websocket op %r failed", str(message.get("op"))[:40])
            reply = error(500, "internal error")
        if reply is None:
            return
        if ref is not None:
            reply["ref"] = ref
        await conn.send_now(reply)

    async def _answer(self, conn: Connection, request: Request) -> dict[str, Any] | None:
        """The reply to one op (None when the op sent its own)."""
        if request.op == "ping":
            return {"type": "pong"}
        if request.op == "subscribe":
            await self._subscribe(conn, request.fields, request.ref)
            return None
        if request.op == "unsubscribe":
            return self._unsubscribe(conn, request.fields)
        if self.gateway.is_revoked(conn.viewer):
            return error(401, "invalid or revoked token")
        op = self.ops[request.op]
        return await op.run(conn.viewer, op.read(conn.viewer, request.fields))

    async def _subscribe(self, conn: Connection, fields: dict[str, Any], ref: Any) -> None:
        asked = read_subscribe(
            fields,
            held=len(conn.scopes),
            max_scopes=self.limits.max_subscriptions,
            max_id=self.limits.max_id,
            max_since_keys=self.limits.max_since_keys,
        )
        for scope in asked.scopes:
            refusal = await self.authority.authorize(conn.viewer, scope)
            if refusal is not None:
                raise Refusal(*refusal)
        scopes = set(asked.scopes)
        since = asked.since

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

    def _unsubscribe(self, conn: Connection, fields: dict[str, Any]) -> dict[str, Any]:
        for scope in read_scopes(fields.get("scopes"), self.limits.max_id):
            self.gateway.unsubscribe(conn, scope)
        return {"type": "unsubscribed", "scopes": sorted(str(s) for s in conn.scopes)}


def _too_big(data: str | bytes, limit: int) -> bool:
    """Over `limit` bytes; text is measured in characters first, encoded only when it
    could be over (a character is at most 4 bytes of UTF-8)."""
    if len(data) > limit:
        return True
    return isinstance(data, str) and len(data) * 4 > limit and len(data.encode()) > limit


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
