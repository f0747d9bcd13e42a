"""Ready-made frames: byte-exact with what a websockets server would send, at every length class."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from realtime.frames import DirectWriter, Outgoing, text_frame


class _Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closing


class _Writable:
    def __init__(self) -> None:
        self.set = True

    def is_set(self) -> bool:
        return self.set


class _Conn:
    extensions: list[object] = []


class WebSocketsSansIOProtocol:
    """The attributes of uvicorn's protocol that the writer reads, and nothing else."""

    def __init__(self) -> None:
        self.transport = _Transport()
        self.conn = _Conn()
        self.handshake_complete = True
        self.close_sent = False
        self.disconnected = False
        self.initial_response: object = None
        self.writable = _Writable()
        self.request: object = type("Request", (), {"headers": {"Host": "127.0.0.1"}})()
        self.response: object = "handshake response"

    async def send(self, _message: object) -> None:
        return None


def _parse(data: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame: Frame = done.value
        return frame
    raise AssertionError("the frame was incomplete")


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65_535, 65_536, 200_000])
def test_a_text_frame_parses_back_to_its_payload_at_every_length(length: int) -> None:
    payload = (b"\xc3\xa9" * length)[:length]  # UTF-8 or not, the frame carries bytes
    frame = _parse(text_frame(payload))
    assert frame.opcode is Opcode.TEXT
    assert frame.fin
    assert frame.data == payload
    # Byte for byte what websockets itself would write for an unmasked text frame.
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)


def test_an_outgoing_message_builds_its_frame_once() -> None:
    message = Outgoing('{"type":"event"}')
    assert message.frame is message.frame
    assert _parse(message.frame).data == b'{"type":"event"}'


def test_only_uvicorns_sansio_protocol_gets_a_direct_writer() -> None:
    async def plain_send(_message: object) -> None:
        return None

    class Other:
        transport = object()

        async def send(self, _message: object) -> None:
            return None

    assert DirectWriter.for_asgi_send(None) is None
    assert DirectWriter.for_asgi_send(plain_send) is None
    assert DirectWriter.for_asgi_send(Other().send) is None


@pytest.mark.parametrize(
    "unsafe",
    [
        "handshake not complete",
        "close sent",
        "disconnected",
        "http response instead",
        "buffer over the high-water mark",
        "extension negotiated",
        "transport closing",
    ],
)
def test_the_direct_writer_leaves_every_unsafe_socket_to_asgi(unsafe: str) -> None:
    protocol = WebSocketsSansIOProtocol()
    writer = DirectWriter.for_asgi_send(protocol.send)
    assert writer is not None
    assert writer.write(b"first")
    if unsafe == "handshake not complete":
        protocol.handshake_complete = False
    elif unsafe == "close sent":
        protocol.close_sent = True
    elif unsafe == "disconnected":
        protocol.disconnected = True
    elif unsafe == "http response instead":
        protocol.initial_response = (403, [], b"")
    elif unsafe == "buffer over the high-water mark":
        protocol.writable.set = False
    elif unsafe == "extension negotiated":
        protocol.conn = type("Deflating", (), {"extensions": [object()]})()
    else:
        protocol.transport.closing = True
    assert not writer.write(b"second")
    assert protocol.transport.written == [b"first"]


def test_the_handshake_is_released_once_the_socket_is_open() -> None:
    protocol = WebSocketsSansIOProtocol()
    writer = DirectWriter.for_asgi_send(protocol.send)
    assert writer is not None
    request = protocol.request
    writer.release_handshake()
    assert protocol.request is None and protocol.response is None
    assert request.headers == {}  # type: ignore[attr-defined]  # websockets' parser keeps it
