"""The Redis implementation of the event bus: one pub/sub channel for every event.

Every replica publishes each committed event once and receives every event once.
Pub/sub delivers at most once; after a lost connection the subscriber reconnects
with backoff and tells its listeners (`on_reconnect`) so they fill the gap from
the events table.

The subscriber never waits on a silent connection: it pings Redis when nothing
arrived for `heartbeat_s` and gives the connection up when nothing at all (not
even the pong) arrived for `dead_after_s`. A master that died, hung or was
demoted is noticed within that bound, and with a Sentinel URL
(`realtime/redis_clients.py`) the next subscription goes to the new master.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from realtime import metrics
from realtime.bus import Listener, stop_if_cancelled
from realtime.redis_clients import describe, redis_from_url

log = logging.getLogger(__name__)

CHANNEL = "aidmesh:events"
_PING = b"aidmesh-bus"
_MAX_BACKOFF_S = 1.0


class SubscriberSilent(RedisTimeoutError):
    """Nothing, not even a pong, came over the subscription for too long."""


class RedisBus:
    def __init__(
        self,
        url: str,
        *,
        channel: str = CHANNEL,
        max_connections: int = 32,
        pool_timeout_s: float = 2.0,
        socket_timeout_s: float = 2.0,
        heartbeat_s: float = 1.0,
        dead_after_s: float = 3.0,
    ) -> None:
        self.client = redis_from_url(
            url,
            max_connections=max_connections,
            pool_timeout_s=pool_timeout_s,
            socket_timeout_s=socket_timeout_s,
            socket_connect_timeout_s=socket_timeout_s,
        )
        # The subscriber reads with its own timeout (see `_listen`) and must see every
        # lost connection itself, to report it: redis-py's silent reconnects are off.
        self._sub_client = redis_from_url(
            url,
            max_connections=2,
            socket_timeout_s=socket_timeout_s,
            socket_connect_timeout_s=socket_timeout_s,
            retries=0,
        )
        self.where = describe(url)
        self.channel = channel
        self.heartbeat_s = heartbeat_s
        self.dead_after_s = dead_after_s
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
        failures = 0
        while True:
            pubsub = self._sub_client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._subscribed.set()
                metrics.BUS_CONNECTED.set(1)
                if not first:
                    metrics.BUS_RECONNECTS.inc()
                    log.warning(
                        "event bus resubscribed to %s on %s after %d failed attempt(s);"
                        " filling gaps",
                        self.channel,
                        self.where,
                        failures,
                    )
                    for callback in self._reconnect:
                        callback()
                first = False
                backoff, failures = 0.1, 0
                await self._listen(pubsub)
            except Exception as exc:
                stop_if_cancelled(exc)
                # Whatever ended the subscription, the subscriber lives on: a subscriber
                # that died would leave this replica without live events until restarted.
                # Besides redis-py's connection errors, a connection killed while the client
                # re-handshakes can raise the event loop's own RuntimeError ("the handler
                # is closed").
                self._subscribed.clear()
                metrics.BUS_CONNECTED.set(0)
                failures += 1
                expected = isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError))
                # One line per outage, then one every ten attempts: a long outage
                # should not flood the log.
                if failures == 1 or failures % 10 == 0:
                    log.warning(
                        "event bus lost Redis (%s: %s; attempt %d); retrying every %.1fs at most",
                        type(exc).__name__,
                        exc,
                        failures,
                        _MAX_BACKOFF_S,
                        exc_info=not expected,
                    )
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF_S)

    async def _listen(self, pubsub: PubSub) -> None:
        """Hand every message to the listeners until the connection fails or falls silent."""
        loop = asyncio.get_running_loop()
        heard_at = pinged_at = loop.time()
        while True:
            message = await pubsub.get_message(timeout=self.heartbeat_s)
            now = loop.time()
            if message is None:
                if now - heard_at >= self.dead_after_s:
                    raise SubscriberSilent(f"no reply from Redis for {now - heard_at:.1f}s")
                if now - max(heard_at, pinged_at) >= self.heartbeat_s:
                    await pubsub.ping(_PING)
                    pinged_at = now
                continue
            heard_at = now
            if message.get("type") != "message":
                continue  # a pong
            data = message["data"]
            for listener in self._listeners:
                try:
                    listener(data)
                except Exception:
                    log.exception("bus listener failed")
