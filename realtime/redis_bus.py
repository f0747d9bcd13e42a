"""The Redis implementation of the event bus: one pub/sub channel for every event.

Every replica publishes each committed event once and receives every event once.
Pub/sub delivers at most once; after a lost connection the subscriber reconnects
with backoff and tells its listeners (`on_reconnect`) so they fill the gap from
the events table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.asyncio.connection import BlockingConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from realtime.bus import Listener

log = logging.getLogger(__name__)

CHANNEL = "aidmesh:events"


class RedisBus:
    def __init__(
        self,
        url: str,
        *,
        channel: str = CHANNEL,
        max_connections: int = 32,
        pool_timeout_s: float = 2.0,
        socket_timeout_s: float = 2.0,
    ) -> None:
        # A blocking pool sized on purpose: redis-py's default pool raises when full.
        self._pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=pool_timeout_s,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=socket_timeout_s,
        )
        self.client = aioredis.Redis(connection_pool=self._pool)
        # The subscriber blocks on reads: no socket timeout there, health checks instead.
        self._sub_client = aioredis.Redis.from_url(
            url,
            socket_timeout=None,
            socket_connect_timeout=socket_timeout_s,
            health_check_interval=5,
        )
        self.channel = channel
        self._listeners: list[Listener] = []
        self._reconnect: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="redis-bus-subscriber")
        # Wait for the first SUBSCRIBE to complete so that nothing published after
        # start() returns is missed; if Redis is down, the subscriber keeps trying.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), timeout=5)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._sub_client.aclose()
        await self.client.aclose()
        await self._pool.disconnect()

    async def publish(self, message: bytes) -> None:
        await self.client.publish(self.channel, message)

    async def publish_many(self, messages: list[bytes]) -> None:
        # One round trip: a pipeline without MULTI keeps the order and adds no atomicity.
        async with self.client.pipeline(transaction=False) as pipe:
            for message in messages:
                pipe.publish(self.channel, message)
            await pipe.execute()

    async def ping(self) -> None:
        await self.client.ping()

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        self._reconnect.append(callback)

    @property
    def subscribed(self) -> bool:
        return self._subscribed.is_set()

    async def _run(self) -> None:
        backoff = 0.1
        first = True
        while True:
            pubsub = self._sub_client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._subscribed.set()
                if not first:
                    log.warning("event bus resubscribed to %s; filling gaps", self.channel)
                    for callback in self._reconnect:
                        callback()
                first = False
                backoff = 0.1
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    data = message["data"]
                    for listener in self._listeners:
                        try:
                            listener(data)
                        except Exception:
                            log.exception("bus listener failed")
            except asyncio.CancelledError:
                raise
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                self._subscribed.clear()
                log.warning("event bus lost Redis (%s); retrying in %.1fs", exc, backoff)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)
