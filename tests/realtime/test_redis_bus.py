"""The Redis bus against a real redis-server: a batch of events published in one round
trip reaches every replica's listener whole and in order."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio.client import PubSub

from realtime.bus import stop_if_cancelled
from realtime.redis_bus import RedisBus
from tests.procs import RedisServer


def test_a_published_batch_arrives_at_every_bus_in_order(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()

    async def run() -> list[list[bytes]]:
        buses = [RedisBus(server.url, channel="batch-test") for _ in range(2)]
        received: list[list[bytes]] = [[], []]
        for bus, inbox in zip(buses, received, strict=True):
            bus.add_listener(inbox.append)
            await bus.start()
        try:
            batches = [[b"event-%d" % (10 * b + i) for i in range(10)] for b in range(5)]
            for batch in batches:
                await buses[0].publish_many(batch)
            await buses[1].publish(b"after")
            for _ in range(100):
                if all(len(inbox) == 51 for inbox in received):
                    break
                await asyncio.sleep(0.02)
        finally:
            for bus in buses:
                await bus.close()
        return received

    try:
        received = asyncio.run(run())
    finally:
        server.stop()
    expected = [b"event-%d" % n for n in range(50)] + [b"after"]
    assert received == [expected, expected]


async def _after_the_reconnect_publish_and_receive(
    bus: RedisBus, reconnects: list[float], received: list[bytes]
) -> None:
    """Wait (4 s at most) for the reconnect to be reported, then publish `after` and wait
    (2 s at most) for it to arrive."""
    for _ in range(200):
        if reconnects:
            break
        await asyncio.sleep(0.02)
    await bus.publish(b"after")
    for _ in range(100):
        if received:
            break
        await asyncio.sleep(0.02)


def test_a_frozen_redis_is_given_up_within_the_bound_and_the_reconnect_reported(
    tmp_path: Path,
) -> None:
    """A subscriber on a silent connection (Redis SIGSTOPped, a partitioned or hung master)
    would wait forever; the bus pings, gives the connection up and reports the reconnect."""
    server = RedisServer(tmp_path / "redis")
    server.start()

    async def run() -> tuple[float | None, int, list[bytes]]:
        bus = RedisBus(server.url, channel="frozen-test", heartbeat_s=0.2, dead_after_s=0.8)
        received: list[bytes] = []
        reconnects: list[float] = []
        bus.add_listener(received.append)
        bus.on_reconnect(lambda: reconnects.append(time.monotonic()))
        await bus.start()
        gave_up_after = None
        try:
            server.pause()
            paused_at = time.monotonic()
            while time.monotonic() - paused_at < 3.0:
                if not bus.subscribed:
                    gave_up_after = time.monotonic() - paused_at
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.5)
            server.resume()
            await _after_the_reconnect_publish_and_receive(bus, reconnects, received)
        finally:
            if server.paused:
                server.resume()
            await bus.close()
        return gave_up_after, len(reconnects), received

    try:
        gave_up_after, reconnects, received = asyncio.run(run())
    finally:
        server.stop()
    print(f"\nfrozen Redis given up after {gave_up_after}s")
    assert gave_up_after is not None and gave_up_after < 2.0, gave_up_after
    assert reconnects == 1
    assert received == [b"after"]


def test_the_subscriber_lives_through_an_error_of_any_kind_and_resubscribes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis killed while redis-py re-handshakes its subscription raised the event
    loop's RuntimeError ("the handler is closed"), which ended the subscriber: the replica
    went on without live events, silently, until it was restarted. Any error now ends
    only that subscription; the next one is made and reported."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    real_get_message = PubSub.get_message
    raised: list[str] = []

    async def get_message_once_broken(self: PubSub, *args: Any, **kwargs: Any) -> Any:
        if not raised:
            raised.append("raised")
            raise RuntimeError(
                "unable to perform operation on <TCPTransport closed=True>; the handler is closed"
            )
        return await real_get_message(self, *args, **kwargs)

    async def run() -> tuple[int, list[bytes]]:
        bus = RedisBus(server.url, channel="any-error-test")
        received: list[bytes] = []
        reconnects: list[float] = []
        bus.add_listener(received.append)
        bus.on_reconnect(lambda: reconnects.append(time.monotonic()))
        monkeypatch.setattr(PubSub, "get_message", get_message_once_broken)
        await bus.start()
        try:
            await _after_the_reconnect_publish_and_receive(bus, reconnects, received)
        finally:
            await bus.close()
        return len(reconnects), received

    caplog.set_level(logging.WARNING, logger="realtime.redis_bus")
    try:
        reconnects, received = asyncio.run(run())
    finally:
        server.stop()
    assert raised == ["raised"]
    assert reconnects == 1
    assert received == [b"after"]
    lost = [r for r in caplog.records if "event bus lost Redis (RuntimeError" in r.getMessage()]
    assert len(lost) == 1 and lost[0].exc_info is not None, caplog.text


def test_a_loop_that_carries_on_after_errors_still_stops_when_cancelled() -> None:
    """The subscriber and the publisher carry on after any error, so a cancellation a
    client library turned into its own error must still stop them; any other error is
    left to the loop."""
    carried_on: list[str] = []

    async def loop() -> None:
        for _ in range(3):  # bounded, so that a loop that failed to stop still ends
            try:
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError as exc:
                    raise RuntimeError("the client's own error") from exc
            except Exception as exc:
                stop_if_cancelled(exc)
                carried_on.append(str(exc))

    async def run() -> bool:
        stop_if_cancelled(RuntimeError("not cancelled"))  # returns: no cancellation
        task = asyncio.create_task(loop())
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.wait({task}, timeout=2)
        return task.cancelled()

    assert asyncio.run(run()) is True
    assert carried_on == []
