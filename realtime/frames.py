"""Server-to-client websocket frames built once per event, written straight to each socket.

An event goes to thousands of sockets with the same bytes on the wire: a server's
frames are not masked (RFC 6455, 5.1) and aidmesh negotiates no extension, so the
frame is the same for every connection. `Outgoing` builds it once per replica;
`DirectWriter` hands it to uvicorn's transport for a socket that is open and
keeping up, which skips the per-socket ASGI send (middleware wrappers, framing,
one coroutine per delivery). Anything it cannot vouch for — another server
protocol, a negotiated extension, a socket that is closing or whose buffer is
over the high-water mark — returns False, and the caller takes the ordinary
ASGI path, which waits for the buffer to drain.
"""

from __future__ import annotations

import struct
from typing import Any

_FIN_TEXT = 0x81


def text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented text frame carrying `payload` (UTF-8)."""
    n = len(payload)
    if n < 126:
        header = bytes((_FIN_TEXT, n))
    elif n < 1 << 16:
        header = struct.pack("!BBH", _FIN_TEXT, 126, n)
    else:
        header = struct.pack("!BBQ", _FIN_TEXT, 127, n)
    return header + payload


class Outgoing:
    """One message for many connections: its text for the ASGI path, its frame for the
    direct one, each made at most once."""

    __slots__ = ("_frame", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        if self._frame is None:
            self._frame = text_frame(self.text.encode())
        return self._frame


class DirectWriter:
    """Writes ready-made frames to one uvicorn websocket connection, when that is safe.

    Only uvicorn's websockets-sansio protocol is understood (uvicorn's default when
    the websockets package is installed). Its own sends build a frame and write it
    in one `transport.write`, so a direct write between two of them cannot split
    a frame; the protocol object keeps no per-message send state aidmesh would skip.
    """

    __slots__ = ("_protocol", "_transport")

    def __init__(self, protocol: Any, transport: Any) -> None:
        self._protocol = protocol
        self._transport = transport

    @classmethod
    def for_asgi_send(cls, send: Any) -> DirectWriter | None:
        """The writer behind an ASGI `send` that uvicorn bound to its protocol, if any."""
        protocol = getattr(send, "__self__", None)
        if type(protocol).__name__ != "WebSocketsSansIOProtocol":
            return None
        transport = getattr(protocol, "transport", None)
        if transport is None or not hasattr(protocol, "conn"):
            return None
        return cls(protocol, transport)

    def write(self, frame: bytes) -> bool:
        """Write `frame` now and say True, or leave it to the ASGI path and say False."""
        p = self._protocol
        if (
            not p.handshake_complete
            or p.close_sent
            or p.disconnected
            or p.initial_response is not None
            or not p.writable.is_set()
            or p.conn.extensions
            or self._transport.is_closing()
        ):
            return False
        self._transport.write(frame)
        return True

    def release_handshake(self) -> None:
        """Let go of the handshake's request and response once the socket is open.

        uvicorn keeps both for the life of the connection and never reads them again
        (the ASGI scope has its own copy of the headers); websockets' parser also keeps
        the request, so its headers are emptied too. About 2.5 KB per connection.
        """
        p = self._protocol
        if not (p.handshake_complete and p.initial_response is None):
            return
        request = getattr(p, "request", None)
        headers = getattr(request, "headers", None)
        if headers is not None and hasattr(headers, "clear"):
            headers.clear()
        for name in ("request", "response"):
            if hasattr(p, name):
                setattr(p, name, None)
