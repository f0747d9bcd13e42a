"""Dry run: what declaring the 10-request `earthquake` playbook would do in a network of
100 cities, through `POST /api/v1/incidents/dry-run`, one after another; p50/p99 of the
response time (target: p50 < 50 ms)."""

from __future__ import annotations

from typing import Any

from bench.declare import timed_posts
from bench.harness import log
from bench.seed import World

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
    planned = {"requests": 0, "cities": 0}

    def tally(preview: dict[str, Any]) -> None:
        planned["requests"] += len(preview["requests"])
        planned["cities"] += sum(len(r["cities"]) for r in preview["rings"])

    body = {"incident_type": "earthquake", "title": "Dry run", "playbook": "earthquake"}
    series = timed_posts(
        world,
        name=f"dryrun-{backend}",
        path="/api/v1/incidents/dry-run",
        body=lambda _: body,
        on_ok=tally,
        ok_status=200,
        database_url=database_url,
        redis_url=redis_url,
        work=work,
        count=count,
        warmup=warmup,
    )
    summary = series.latency.summary_ms()
    figures = {
        "backend": backend,
        "cities": len(world.city_ids),
        "playbook": "earthquake",
        "dry_runs": count,
        "statuses": series.statuses,
        "requests_per_dry_run": round(planned["requests"] / count, 1),
        "cities_reached_per_dry_run": round(planned["cities"] / count, 1),
        "latency": summary,
        "server_cpu_ms_per_dry_run": round(1000 * series.server_cpu_s / (warmup + count), 1),
        "target_p50_ms": TARGET_P50_MS,
        "met": summary["p50_ms"] is not None and summary["p50_ms"] < TARGET_P50_MS,
    }
    log(f"dry run on {backend}: {figures['latency']}")
    return figures
