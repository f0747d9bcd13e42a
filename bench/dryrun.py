"""Dry run: what declaring the 10-request `earthquake` playbook would do in a network of
100 cities, through `POST /api/v1/incidents/dry-run`, one after another; p50/p99 of the
response time (target: p50 < 50 ms)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from bench.harness import aidmesh_replica, log, running
from bench.seed import World
from bench.stats import Histogram

TARGET_P50_MS = 50.0


def run(
    world: World,
    *,
    backend: str,
    database_url: str,
    redis_url: str,
    work: Any,
    count: int = 200,
    warmup: int = 10,
) -> dict[str, Any]:
    server = aidmesh_replica(
        f"dryrun-{backend}", database_url=database_url, redis_url=redis_url, work=work
    )
    latency = Histogram()
    statuses: dict[int, int] = {}
    requests_planned = cities_reached = 0
    body = {"incident_type": "earthquake", "title": "Dry run", "playbook": "earthquake"}
    with (
        running([server]),
        httpx.Client(base_url=server.url, timeout=60.0, trust_env=False) as client,
    ):
        headers = {"Authorization": f"Bearer {world.manager.secret}"}
        cpu_before = server.cpu()
        for i in range(warmup + count):
            at = time.perf_counter()
            response = client.post("/api/v1/incidents/dry-run", json=body, headers=headers)
            took = time.perf_counter() - at
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if i >= warmup:
                latency.add(took)
                if response.status_code == 200:
                    preview = response.json()
                    requests_planned += len(preview["requests"])
                    cities_reached += sum(len(r["cities"]) for r in preview["rings"])
        server_cpu = server.cpu() - cpu_before
    summary = latency.summary_ms()
    figures = {
        "backend": backend,
        "cities": len(world.city_ids),
        "playbook": "earthquake",
        "dry_runs": count,
        "statuses": statuses,
        "requests_per_dry_run": round(requests_planned / count, 1),
        "cities_reached_per_dry_run": round(cities_reached / count, 1),
        "latency": summary,
        "server_cpu_ms_per_dry_run": round(1000 * server_cpu / (warmup + count), 1),
        "target_p50_ms": TARGET_P50_MS,
        "met": summary["p50_ms"] is not None and summary["p50_ms"] < TARGET_P50_MS,
    }
    log(f"dry run on {backend}: {figures['latency']}")
    return figures
