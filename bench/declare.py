"""Declare: an incident from the 10-request `earthquake` playbook in a network of 100 cities,
through `POST /api/v1/incidents`, one after another; p50/p99 of the response time."""

from __future__ import annotations

import time
from typing import Any

import httpx

from bench.harness import aidmesh_replica, log, running
from bench.seed import World
from bench.stats import Histogram


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
    server = aidmesh_replica(
        f"declare-{backend}", database_url=database_url, redis_url=redis_url, work=work
    )
    latency = Histogram()
    statuses: dict[int, int] = {}
    requests_raised = 0
    with (
        running([server]),
        httpx.Client(base_url=server.url, timeout=60.0, trust_env=False) as client,
    ):
        headers = {"Authorization": f"Bearer {world.manager.secret}"}
        cpu_before = server.cpu()
        for i in range(warmup + count):
            at = time.perf_counter()
            response = client.post(
                "/api/v1/incidents",
                json={
                    "incident_type": "earthquake",
                    "title": f"Declare benchmark {i}",
                    "playbook": "earthquake",
                },
                headers=headers,
            )
            took = time.perf_counter() - at
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if i >= warmup:
                latency.add(took)
                if response.status_code == 201:
                    requests_raised += len(response.json()["requests"])
        server_cpu = server.cpu() - cpu_before
    figures = {
        "backend": backend,
        "cities": len(world.city_ids),
        "playbook": "earthquake",
        "declarations": count,
        "statuses": statuses,
        "requests_per_declaration": round(requests_raised / count, 1),
        "latency": latency.summary_ms(),
        "server_cpu_ms_per_declaration": round(1000 * server_cpu / (warmup + count), 1),
    }
    log(f"declare on {backend}: {figures['latency']}")
    return figures
