"""Load generators: real claims through the REST API at a target rate (aidmesh), and
plain PUBLISHes of a same-shaped payload straight to Redis (the naive app).

Both are open loop: the i-th event is due at t0 + i/rate whatever happened to the
ones before; each records its production time with `time.time()` right before it
sends, and puts it in the event as `bench p<phase> t<time>`.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.stats import Histogram


@dataclass
class Produced:
    target_rate: float
    duration_s: float
    ok: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    behind: int = 0  # events sent late because too many were in flight
    issued: int = 0  # events sent (answered or not)
    unsent: int = 0  # events never sent: the phase ran out of time first
    elapsed_s: float = 0.0
    latency: Histogram = field(default_factory=Histogram)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "target_rate": self.target_rate,
            "achieved_rate": round(self.rate, 1),
            "ok": self.ok,
            "failed": dict(self.failed),
            "late_starts": self.behind,
            "not_sent": self.unsent,
            "produce_latency": self.latency.summary_ms(),
        }


async def _paced(
    rate: float,
    duration_s: float,
    send: Callable[[int], Awaitable[None]],
    result: Produced,
    max_inflight: int,
) -> None:
    """Send `rate * duration_s` events on schedule. Past twice the duration (plus 5 s)
    an overloaded server has had its chance: the events left are counted as not sent,
    so a phase far over capacity ends in bounded time."""
    total = max(1, round(rate * duration_s))
    stop_after_s = 2 * duration_s + 5
    gate = asyncio.Semaphore(max_inflight)
    tasks: set[asyncio.Task[None]] = set()
    start = time.perf_counter()

    async def one(i: int) -> None:
        try:
            await send(i)
        finally:
            gate.release()

    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if gate.locked():
            result.behind += 1
        await gate.acquire()
        if time.perf_counter() - start > stop_after_s:
            gate.release()
            result.unsent = total - i
            break
        result.issued += 1
        task = asyncio.create_task(one(i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=60)
    result.elapsed_s = max(time.perf_counter() - start, total / rate)


class RequestPool:
    """Requests with units left, spread over incidents so claims do not all queue on one
    incident's row lock; each claim takes one unit."""

    def __init__(self) -> None:
        self.by_incident: dict[int, list[list[int]]] = {}
        self._cycle: Any = None

    def add(self, incident_id: int, request_id: int, units: int) -> None:
        self.by_incident.setdefault(incident_id, []).append([request_id, units])
        self._cycle = itertools.cycle(sorted(self.by_incident))

    def capacity(self) -> int:
        return sum(u for reqs in self.by_incident.values() for _, u in reqs)

    def capacity_of(self, incident_id: int) -> int:
        return sum(u for _, u in self.by_incident.get(incident_id, []))

    def take(self) -> int:
        for _ in range(len(self.by_incident)):
            incident = next(self._cycle)
            for entry in self.by_incident[incident]:
                if entry[1] > 0:
                    entry[1] -= 1
                    return entry[0]
        raise RuntimeError("the request pool is empty; raise more requests")


async def produce_claims(
    urls: list[str],
    tokens: list[str],
    pool: RequestPool,
    *,
    rate: float,
    duration_s: float,
    phase: int,
    max_inflight: int = 256,
) -> Produced:
    """Claims of one unit each, round robin over replicas and responder cities."""
    result = Produced(rate, duration_s)
    limits = httpx.Limits(max_connections=max_inflight, max_keepalive_connections=max_inflight)
    clients = [
        httpx.AsyncClient(base_url=u, limits=limits, timeout=30.0, trust_env=False) for u in urls
    ]
    try:

        async def send(i: int) -> None:
            client = clients[i % len(clients)]
            token = tokens[i % len(tokens)]
            request_id = pool.take()
            at = time.time()
            try:
                response = await client.post(
                    f"/api/v1/requests/{request_id}/claims",
                    json={"quantity": 1, "note": f"bench p{phase} t{at:.6f}"},
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Idempotency-Key": uuid.uuid4().hex,
                    },
                )
            except httpx.HTTPError as exc:
                result.failed[type(exc).__name__] += 1
                return
            if response.status_code == 201:
                result.ok += 1
                result.latency.add(time.time() - at)
            else:
                result.failed[str(response.status_code)] += 1

        await _paced(rate, duration_s, send, result, max_inflight)
    finally:
        for client in clients:
            await client.aclose()
    return result


async def produce_publishes(
    redis_url: str,
    channel: str,
    make: Callable[[int, str], str],
    *,
    rate: float,
    duration_s: float,
    phase: int,
    first_seq: int,
) -> Produced:
    """PUBLISH a same-shaped event straight to Redis, as the naive app's producers would."""
    import redis.asyncio as aioredis

    result = Produced(rate, duration_s)
    client = aioredis.Redis.from_url(redis_url)
    try:

        async def send(i: int) -> None:
            at = time.time()
            try:
                await client.publish(channel, make(first_seq + i, f"bench p{phase} t{at:.6f}"))
            except Exception as exc:
                result.failed[type(exc).__name__] += 1
                return
            result.ok += 1
            result.latency.add(time.time() - at)

        # One at a time: the payload's seq must reach Redis in order.
        await _paced(rate, duration_s, send, result, max_inflight=1)
    finally:
        await client.aclose()
    return result
