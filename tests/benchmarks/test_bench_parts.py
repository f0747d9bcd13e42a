"""The benchmark's own parts: its latency histogram, and the servers aidmesh is measured
against.

The README's figures are only as good as these: a percentile off by a bucket, or a
comparison server that quietly stops delivering, would make every ratio wrong.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from websockets.asyncio.client import connect

from bench.fanout import NAIVE_CHANNEL, NAIVE_SYSTEMS
from bench.stats import Histogram
from tests.procs import HOST, RedisServer, end, free_port, healthy, start

REPO = Path(__file__).resolve().parents[2]


def test_quantiles_are_the_true_value_or_at_most_one_percent_above() -> None:
    h = Histogram()
    for ms in range(1, 1001):
        h.add(ms / 1000)
    for q in (0.5, 0.9, 0.99):
        got = h.quantile(q)
        assert got is not None
        assert q <= got < q * 1.0101, (q, got)
    assert h.quantile(1.0) == 1.0
    assert Histogram().quantile(0.5) is None


def test_histograms_sent_between_processes_merge_to_the_whole() -> None:
    whole, first, second = Histogram(), Histogram(), Histogram()
    for i in range(1, 2001):
        seconds = (i % 397) / 1000 + i / 1e6
        whole.add(seconds)
        (first if i % 3 else second).add(seconds)
    merged = Histogram()
    merged.merge(first.compact())
    merged.merge(second)
    assert (merged.counts, merged.n, merged.max) == (whole.counts, whole.n, whole.max)
    assert merged.summary_ms() == whole.summary_ms()


async def _receive(url: str, redis_url: str, clients: int, messages: list[str]) -> list[list[str]]:
    """Connect `clients` websockets, publish `messages`, and return what each received."""
    sockets = [await connect(url, open_timeout=10) for _ in range(clients)]
    try:
        publisher = aioredis.Redis.from_url(redis_url)
        async with publisher:
            for text in messages:
                await publisher.publish(NAIVE_CHANNEL, text)
        got: list[list[str]] = []
        for ws in sockets:
            got.append([str(await asyncio.wait_for(ws.recv(), 10)) for _ in messages])
        return got
    finally:
        for ws in sockets:
            await ws.close()


@pytest.mark.parametrize("system", ["naive", "naive-nodeflate", "floor"])
def test_comparison_server_hands_every_message_to_every_socket_in_order(
    system: str, tmp_path: Path
) -> None:
    redis_server = RedisServer(tmp_path / "redis")
    redis_server.start()
    port = free_port()
    log_path = tmp_path / f"{system}.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        proc = start(
            [sys.executable, *NAIVE_SYSTEMS[system], "--port", str(port)],
            log_path,
            env={**os.environ, "NAIVE_REDIS_URL": redis_server.url},
            cwd=REPO,
        )
        subscribed = redis.Redis.from_url(redis_server.url)
        deadline = time.monotonic() + 60
        while not (
            healthy(f"http://{HOST}:{port}")
            and dict(subscribed.pubsub_numsub(NAIVE_CHANNEL)).get(NAIVE_CHANNEL.encode())
        ):
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, f"{system} did not start:\n{log_path.read_text()}"
            time.sleep(0.05)
        subscribed.close()

        # Short, 16-bit and 64-bit frame lengths, and text outside ASCII.
        messages = [
            '{"type":"event","seq":1}',
            '{"type":"event","seq":2,"note":"' + "x" * 300 + '"}',
            '{"type":"event","seq":3,"note":"' + "é" * 40_000 + '"}',
            '{"type":"event","seq":4,"note":"São Paulo"}',
        ]
        got = asyncio.run(_receive(f"ws://{HOST}:{port}/ws", redis_server.url, 3, messages))
        assert got == [messages] * 3
    finally:
        end(proc)
        redis_server.stop()
