"""Flooding and oversized frames against a real replica (RELIABILITY S6): each attacking
connection is closed with the right code and a close frame (1008 over the rate,
1009 over the size), nothing answers 5xx, and the replica's memory stays bounded.

Close codes are read by a real client (the websockets library): a socket dropped
without a close frame shows as 1006, or no close frame at all, and fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.realtime.live_client import API, open_ws
from tests.replicas import Cluster, cluster_fixture

cluster = cluster_fixture(replicas=1)

MB = 1024 * 1024
ATTACK_S = 4.0


async def _authed(url: str, token: str) -> ClientConnection:
    ws = await open_ws(url)
    await ws.send(orjson.dumps({"op": "auth", "token": token}).decode())
    assert orjson.loads(await ws.recv())["type"] == "welcome"
    return ws


async def _close_of(ws: ClientConnection, statuses: list[int]) -> tuple[int | None, str]:
    """Read until the server closes; the code and reason of its close frame (None when
    there was none), and every error status seen on the way."""
    try:
        while True:
            message = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
            if message.get("type") == "error":
                statuses.append(int(message["status"]))
    except ConnectionClosed as closed:
        return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (None, "")


async def _flood(url: str, token: str, per_s: int, statuses: list[int]) -> tuple[int | None, str]:
    """Pings at `per_s` frames a second, in 10 ms rounds, until the server closes."""
    ws = await _authed(url, token)
    reader = asyncio.create_task(_close_of(ws, statuses))
    try:
        while not reader.done():
            for _ in range(per_s // 100):
                await ws.send('{"op": "ping"}')
            await asyncio.sleep(0.01)
    except ConnectionClosed:
        pass  # the server closing the flood is the outcome under test, read from the close code
    return await reader


async def _oversized(url: str, token: str | None, size: int) -> tuple[int | None, str]:
    ws = await _authed(url, token) if token else await open_ws(url)
    with contextlib.suppress(ConnectionClosed):
        await ws.send("x" * size)
    return await _close_of(ws, [])


def test_a_client_over_the_rate_gets_a_1008_close_frame(cluster: Cluster) -> None:
    url = cluster.replicas[0].ws_url
    statuses: list[int] = []
    code, reason = asyncio.run(_flood(url, cluster.token("responder", "thika"), 1000, statuses))
    print(f"\nflood at 1,000 frames/s: closed {code} {reason!r}")
    assert (code, reason) == (1008, "too many messages: slow down")
    assert statuses == []


def test_flooding_and_oversized_connections_are_closed_with_bounded_memory(
    cluster: Cluster,
) -> None:
    """S6: two attackers at once for a few seconds, each reconnecting as soon as it is
    closed: one sends 1,000 frames/s, one sends frames over the 64 KiB limit (with and
    without authenticating first)."""
    replica = cluster.replicas[0]
    token = cluster.token("responder", "thika")
    statuses: list[int] = []

    async def attack(kind: str) -> Counter[tuple[int | None, str]]:
        closes: Counter[tuple[int | None, str]] = Counter()
        deadline = time.monotonic() + ATTACK_S
        turn = 0
        while time.monotonic() < deadline:
            turn += 1
            if kind == "flood":
                closes[await _flood(replica.ws_url, token, 1000, statuses)] += 1
            else:
                size = (64 * 1024 + 1, 1 * MB, 8 * MB)[turn % 3]
                closes[await _oversized(replica.ws_url, token if turn % 2 else None, size)] += 1
        return closes

    async def healthy() -> list[int]:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            return [
                (await http.get(f"{replica.url}/healthz")).status_code,
                (
                    await http.get(
                        f"{replica.url}{API}/me", headers={"Authorization": f"Bearer {token}"}
                    )
                ).status_code,
            ]

    async def scenario() -> tuple[dict[str, Any], list[int]]:
        flood, big = await asyncio.gather(attack("flood"), attack("oversized"))
        return {"flood": flood, "oversized": big}, await healthy()

    asyncio.run(_flood(replica.ws_url, token, 1000, []))  # warm up: the code paths, the pools
    before = replica.rss()
    closes, after_attack = asyncio.run(scenario())
    growth = (replica.rss() - before) / MB
    connections = sum(sum(c.values()) for c in closes.values())
    print(
        f"\nS6: {connections} attacking connections over {ATTACK_S:.0f} s (2 at a time);"
        f" closes {dict(closes['flood'])} and {dict(closes['oversized'])};"
        f" RSS growth {growth:.1f} MB; error statuses {sorted(set(statuses))};"
        f" REST after: {after_attack}"
    )
    assert set(closes["flood"]) == {(1008, "too many messages: slow down")}, closes
    assert {code for code, _ in closes["oversized"]} == {1009}, closes
    assert all(status < 500 for status in statuses)
    assert after_attack == [200, 200]
    assert growth < 50
