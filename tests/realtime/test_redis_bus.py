"""The Redis bus against a real redis-server: a batch of events published in one round
trip reaches every replica's listener whole and in order."""

from __future__ import annotations

import asyncio
from pathlib import Path

from realtime.redis_bus import RedisBus
from tests.replicas import RedisServer


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
