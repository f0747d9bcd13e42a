"""The alternative a user would build first: FastAPI's documented websocket broadcast.

`ConnectionManager` is the pattern from FastAPI's websocket docs ("Handling
disconnections and multiple clients"): a list of sockets and a `broadcast` that
awaits `send_text` on each in turn. One Redis pub/sub subscriber task feeds it.
It runs under uvicorn's defaults (permessage-deflate on), as
`python -m uvicorn bench.naive_app:app`.

The one liberty taken: the relay survives a failed send (a socket that closed
mid-broadcast), which would otherwise end the subscriber task and every delivery
after it; any user would add that after the first outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

REDIS_URL = os.environ.get("NAIVE_REDIS_URL", "redis://127.0.0.1:6379/0")
CHANNEL = os.environ.get("NAIVE_CHANNEL", "naive:events")
log = logging.getLogger("naive")


class ConnectionManager:
    def __init__(self) -> None:
        self.active_connections: list[WebSocket] = []

    async def connect(self, websocket: WebSocket) -> None:
        await websocket.accept()
        self.active_connections.append(websocket)

    def disconnect(self, websocket: WebSocket) -> None:
        with contextlib.suppress(ValueError):
            self.active_connections.remove(websocket)

    async def broadcast(self, message: str) -> None:
        for connection in self.active_connections:
            await connection.send_text(message)


manager = ConnectionManager()


async def relay() -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    pubsub = client.pubsub()
    await pubsub.subscribe(CHANNEL)
    async for message in pubsub.listen():
        if message["type"] != "message":
            continue
        try:
            await manager.broadcast(message["data"].decode())
        except Exception as exc:
            log.warning("broadcast failed: %r", exc)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    task = asyncio.create_task(relay())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    await manager.connect(websocket)
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        manager.disconnect(websocket)
