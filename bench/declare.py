"""Declare: an incident from the 10-request `earthquake` playbook in a network of 100 cities,
through `POST /api/v1/incidents`, one after another; p50/p99 of the response time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.harness import aidmesh_replica, log, running
from bench.seed import World
from bench.stats import Histogram


@dataclass
class Series:
    """One POST route timed call after call on a replica of its own."""

    latency: Histogram = field(default_factory=Histogram)
    statuses: dict[int, int] = field(default_factory=dict)
    server_cpu_s: float = 0.0


def timed_posts(
    world: World,
    *,
    name: str,
    path: str,
    body: Callable[[int], dict[str, Any]],
    on_ok: Callable[[dict[str, Any]], None],
    ok_status: int,
    database_url: str,
    redis_url: str,
    work: Any,
    count: int,
    warmup: int,
) -> Series:
    """POST `body(i)` to `path` as the world's manager, `warmup + count` times one after
    another; the last `count` are timed, and `on_ok` sees each of their answers with
    `ok_status`."""
    server = aidmesh_replica(name, database_url=database_url, redis_url=redis_url, work=work)
    series = Series()
    with (
        running([server]),
        httpx.Client(base_url=server.url, timeout=60.0, trust_env=False) as client,
    ):
        headers = {"Authorization": f"Bearer {world.manager.secret}"}
        cpu_before = server.cpu()
        for i in range(warmup + count):
            at = time.perf_counter()
            response = client.post(path, json=body(i), headers=headers)
            took = time.perf_counter() - at
            series.statuses[response.status_code] = series.statuses.get(response.status_code, 0) + 1
            if i >= warmup:
                series.latency.add(took)
                if response.status_code == ok_status:
                    on_ok(response.json())
        series.server_cpu_s = server.cpu() - cpu_before
    return series


def run(
    world: World,
    *,
    backend: str,
    database_url: str,
    redis_url: str,
    work: Any,
    count: int = 100,
    warmup: int = 5,
) -> dict[str, Any]:
    raised = {"requests": 0}

    def count_requests(answer: dict[str, Any]) -> None:
        raised["requests"] += len(answer["requests"])

    series = timed_posts(
        world,
        name=f"declare-{backend}",
        path="/api/v1/incidents",
        body=lambda i: {
            "incident_type": "earthquake",
            "title": f"Declare benchmark {i}",
            "playbook": "earthquake",
        },
        on_ok=count_requests,
        ok_status=201,
        database_url=database_url,
        redis_url=redis_url,
        work=work,
        count=count,
        warmup=warmup,
    )
    figures = {
        "backend": backend,
        "cities": len(world.city_ids),
        "playbook": "earthquake",
        "declarations": count,
        "statuses": series.statuses,
        "requests_per_declaration": round(raised["requests"] / count, 1),
        "latency": series.latency.summary_ms(),
        "server_cpu_ms_per_declaration": round(1000 * series.server_cpu_s / (warmup + count), 1),
    }
    log(f"declare on {backend}: {figures['latency']}")
    return figures
