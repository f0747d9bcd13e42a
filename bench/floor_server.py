"""The floor: the least any server can do to hand each event to every socket.

Not an alternative anyone would deploy. It has no auth, no scopes, no ordering
or gap fill, no backpressure and no slow-consumer handling. It completes the
websocket handshake (the websockets library's asyncio server, compression off)
and, for each Redis pub/sub message, builds one text frame and writes those
bytes straight to every socket's transport, on uvloop.

What it measures is what the bench's clients and this machine allow at all: the
produce-to-receive latency left when a server costs next to nothing. A target
below it cannot be reached by any server on the same machine with the same
clients. Run as `python -m bench.floor_server --host 127.0.0.1 --port N`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
from http import HTTPStatus

import redis.asyncio as aioredis
import uvloop
from websockets.asyncio.server import Request, Response, ServerConnection, serve
from websockets.frames import Frame, Opcode

REDIS_URL = os.environ.get("NAIVE_REDIS_URL", "redis://127.0.0.1:6379/0")
CHANNEL = os.environ.get("NAIVE_CHANNEL", "naive:events")
log = logging.getLogger("floor")

transports: set[asyncio.Transport] = set()


def healthz(connection: ServerConnection, request: Request) -> Response | None:
    if request.path == "/healthz":
        return connection.respond(HTTPStatus.OK, "ok\n")
    return None


async def handler(connection: ServerConnection) -> None:
    transport = connection.transport
    transports.add(transport)
    try:
        await connection.wait_closed()
    finally:
        transports.discard(transport)


async def relay() -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    pubsub = client.pubsub()
    await pubsub.subscribe(CHANNEL)
    async for message in pubsub.listen():
        if message["type"] != "message":
            continue
        frame = Frame(Opcode.TEXT, message["data"]).serialize(mask=False, extensions=[])
        for transport in transports:
            if not transport.is_closing():
                transport.write(frame)


async def main(host: str, port: int) -> None:
    async with serve(
        handler,
        host,
        port,
        compression=None,
        ping_interval=None,
        process_request=healthz,
    ):
        task = asyncio.create_task(relay())
        try:
            await asyncio.Future()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.floor_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main(args.host, args.port))
