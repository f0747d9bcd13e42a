"""What every event bus promises, checked against each implementation: the in-memory
bus and the Redis bus (on a private redis-server).

A replica's gateway listens on the bus it publishes to: whatever it publishes, one
message or a batch, reaches each of its listeners whole and in order, a listener
that fails keeps nothing from the others, and a healthy bus reports no reconnect.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from realtime.bus import EventBus, InMemoryBus
from realtime.redis_bus import RedisBus
from tests.replicas import RedisServer

BusMaker = Callable[[], EventBus]
_channels = itertools.count()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("bus-contract") / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["in-memory", "redis"])
def make_bus(request: pytest.FixtureRequest) -> BusMaker:
    if request.param == "in-memory":
        return InMemoryBus
    server: RedisServer = request.getfixturevalue("redis_server")
    return lambda: RedisBus(server.url, channel=f"bus-contract-{next(_channels)}")


@asynccontextmanager
async def _started(make_bus: BusMaker) -> AsyncIterator[EventBus]:
    bus = make_bus()
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()


async def _until(count: int, *inboxes: list[bytes]) -> None:
    for _ in range(250):
        if all(len(inbox) >= count for inbox in inboxes):
            return
        await asyncio.sleep(0.02)


def test_a_published_message_reaches_every_listener_in_order(make_bus: BusMaker) -> None:
    async def run() -> list[list[bytes]]:
        inboxes: list[list[bytes]] = [[], []]
        async with _started(make_bus) as bus:
            for inbox in inboxes:
                bus.add_listener(inbox.append)
            for n in range(20):
                await bus.publish(b"event-%d" % n)
            await _until(20, *inboxes)
        return inboxes

    expected = [b"event-%d" % n for n in range(20)]
    assert asyncio.run(run()) == [expected, expected]


def test_a_batch_arrives_whole_and_in_order_between_single_messages(
    make_bus: BusMaker,
) -> None:
    async def run() -> list[bytes]:
        inbox: list[bytes] = []
        async with _started(make_bus) as bus:
            bus.add_listener(inbox.append)
            await bus.publish(b"before")
            await bus.publish_many([b"batch-%d" % n for n in range(10)])
            await bus.publish_many([])
            await bus.publish(b"after")
            await _until(12, inbox)
        return inbox

    assert asyncio.run(run()) == [b"before", *(b"batch-%d" % n for n in range(10)), b"after"]


def test_a_failing_listener_keeps_nothing_from_the_others(make_bus: BusMaker) -> None:
    def broken(message: bytes) -> None:
        raise RuntimeError(f"a bug in a listener, on {message!r}")

    async def run() -> list[bytes]:
        inbox: list[bytes] = []
        async with _started(make_bus) as bus:
            bus.add_listener(broken)
            bus.add_listener(inbox.append)
            await bus.publish(b"one")
            await bus.publish_many([b"two", b"three"])
            await _until(3, inbox)
        return inbox

    assert asyncio.run(run()) == [b"one", b"two", b"three"]


def test_a_healthy_bus_reports_no_reconnect_and_closes_cleanly(make_bus: BusMaker) -> None:
    async def run() -> tuple[list[bytes], int]:
        reconnects: list[None] = []
        inbox: list[bytes] = []
        async with _started(make_bus) as bus:
            bus.on_reconnect(lambda: reconnects.append(None))
            bus.add_listener(inbox.append)
            await bus.publish(b"x")
            await _until(1, inbox)
            await asyncio.sleep(0.2)
        return inbox, len(reconnects)

    assert asyncio.run(run()) == ([b"x"], 0)


def test_the_contract_runs_against_both_buses() -> None:
    """The parametrized fixture above names both implementations; a third bus added to
    realtime/ without joining this suite would go unchecked."""
    import realtime

    buses = sorted(p.name for p in Path(realtime.__file__).parent.glob("*bus*.py"))
    assert buses == ["bus.py", "redis_bus.py"]
