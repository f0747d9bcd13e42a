"""Matching: who could help with one incident of 100 open requests, against the rosters
of 500 cities, through `GET /api/v1/incidents/{id}/matches?limit=100`, one call after
another on a replica of its own; p50/p99 of the response time (target: p99 < 50 ms)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from bench.declare import Series
from bench.harness import aidmesh_replica, log, running
from bench.seed import World, declare
from service.commands import aid_requests, rosters
from service.domain.actors import Actor, Role
from service.models import AidRequestCreate, PackageCreate, PackageItemIn

TARGET_P99_MS = 50.0
# Resources of the requests and the packages: each city lends two of them.
RESOURCES = [
    "paramedic-team",
    "high-capacity-pump",
    "generator-100kw",
    "swift-water-rescue-team",
    "water-tender",
]


def seed_rosters(world: World) -> int:
    """One package per city but the requesting one, two resources each; returns the count."""
    made = 0
    for n, city_id in enumerate(world.city_ids[1:]):
        manager = Actor(role=Role.MANAGER, city_id=city_id, token_id=None)
        items = [
            PackageItemIn(resource=RESOURCES[n % len(RESOURCES)], quantity=4),
            PackageItemIn(resource=RESOURCES[(n + 1) % len(RESOURCES)], quantity=2),
        ]
        body = PackageCreate(
            name=f"Package {n}",
            items=items,
            readiness_hours=n % 24,
            self_sufficiency_days=3,
            cap_percent=75,
        )
        world.executor.run_sync(manager, rosters.create_package, city_id, body)
        made += 1
    return made


def raise_requests(world: World, incident_id: int, count: int) -> None:
    for n in range(count):
        body = AidRequestCreate(resource=RESOURCES[n % len(RESOURCES)], quantity=3)
        world.executor.run_sync(world.manager.actor, aid_requests.raise_request, incident_id, body)


def run(
    world: World,
    *,
    backend: str,
    database_url: str,
    redis_url: str,
    work: Any,
    requests: int = 100,
    count: int = 200,
    warmup: int = 10,
) -> dict[str, Any]:
    packages = seed_rosters(world)
    incident_id = declare(world, "Matching benchmark")
    raise_requests(world, incident_id, requests)
    server = aidmesh_replica(
        f"matching-{backend}", database_url=database_url, redis_url=redis_url, work=work
    )
    series = Series()
    lenders = 0
    path = f"/api/v1/incidents/{incident_id}/matches?limit={requests}"
    with (
        running([server]),
        httpx.Client(base_url=server.url, timeout=60.0, trust_env=False) as client,
    ):
        headers = {"Authorization": f"Bearer {world.manager.secret}"}
        cpu_before = server.cpu()
        for i in range(warmup + count):
            at = time.perf_counter()
            response = client.get(path, headers=headers)
            took = time.perf_counter() - at
            series.statuses[response.status_code] = series.statuses.get(response.status_code, 0) + 1
            if i >= warmup:
                series.latency.add(took)
                if response.status_code == 200:
                    page = response.json()
                    assert len(page["data"]) == requests, page["count"]
                    lenders = sum(len(m["lenders"]) for m in page["data"])
        series.server_cpu_s = server.cpu() - cpu_before
    summary = series.latency.summary_ms()
    figures = {
        "backend": backend,
        "cities": len(world.city_ids),
        "packages": packages,
        "open_requests": requests,
        "lenders_per_answer": lenders,
        "calls": count,
        "statuses": series.statuses,
        "latency": summary,
        "server_cpu_ms_per_call": round(1000 * series.server_cpu_s / (warmup + count), 1),
        "target_p99_ms": TARGET_P99_MS,
        "met": summary["p99_ms"] is not None and summary["p99_ms"] < TARGET_P99_MS,
    }
    log(f"matching on {backend}: {figures['latency']}")
    return figures
