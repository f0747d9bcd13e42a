"""After-action report: an incident with 500 requests and 5,000 claims (10 one-unit claims
per request from the ring-0 responders, every other claim accepted, every fourth on site),
then `GET /api/v1/incidents/{id}/report` (charts included) one call after another on a
replica of its own; p50/p99 of the response time (target: p50 < 300 ms)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from bench.harness import aidmesh_replica, log, running
from bench.seed import World, declare, raise_request
from bench.stats import Histogram
from service.commands import claims
from service.models import ClaimCreate, ClaimStatusChange

TARGET_P50_MS = 300.0


def build_incident(world: World, *, requests: int, claims_per_request: int) -> int:
    """The incident the report is read from, written through the commands themselves."""
    incident_id = declare(world, "After-action benchmark")
    run = world.executor.run_sync
    made = 0
    for _ in range(requests):
        request_id = raise_request(world, incident_id, claims_per_request)
        for j in range(claims_per_request):
            responder = world.responders[(made + j) % len(world.responders)]
            (claim, _), _ = run(
                responder.actor,
                claims.claim_request,
                request_id,
                ClaimCreate(quantity=1),
                uuid.uuid4().hex,
            )
            assert claim.id is not None
            if j % 2 == 0:
                run(
                    world.manager.actor,
                    claims.change_claim_status,
                    claim.id,
                    ClaimStatusChange(status="accepted"),
                )
            if j % 4 == 0:
                for status in ("en_route", "on_site"):
                    run(
                        responder.actor,
                        claims.change_claim_status,
                        claim.id,
                        ClaimStatusChange(status=status),
                    )
        made += claims_per_request
    return incident_id


def run(
    world: World,
    *,
    backend: str,
    database_url: str,
    redis_url: str,
    work: Any,
    requests: int = 500,
    claims_per_request: int = 10,
    count: int = 30,
    warmup: int = 3,
) -> dict[str, Any]:
    started = time.perf_counter()
    incident_id = build_incident(world, requests=requests, claims_per_request=claims_per_request)
    built_s = time.perf_counter() - started
    server = aidmesh_replica(
        f"report-{backend}", database_url=database_url, redis_url=redis_url, work=work
    )
    latency = Histogram()
    statuses: dict[int, int] = {}
    shape: dict[str, int] = {}
    with (
        running([server]),
        httpx.Client(base_url=server.url, timeout=120.0, trust_env=False) as client,
    ):
        headers = {"Authorization": f"Bearer {world.observer.secret}"}
        cpu_before = server.cpu()
        for i in range(warmup + count):
            at = time.perf_counter()
            response = client.get(f"/api/v1/incidents/{incident_id}/report", headers=headers)
            took = time.perf_counter() - at
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if i >= warmup:
                latency.add(took)
            if i == 0 and response.status_code == 200:
                body = response.json()
                shape = {
                    "requests": len(body["requests"]),
                    "claims": len(body["claims"]),
                    "timeline_events": len(body["timeline"]),
                    "bytes": len(response.content),
                }
        server_cpu_s = server.cpu() - cpu_before
    summary = latency.summary_ms()
    figures = {
        "backend": backend,
        "report": shape,
        "reads": count,
        "statuses": statuses,
        "latency": summary,
        "server_cpu_ms_per_report": round(1000 * server_cpu_s / (warmup + count), 1),
        "build_s": round(built_s, 1),
        "target_p50_ms": TARGET_P50_MS,
        "met": summary["p50_ms"] is not None and summary["p50_ms"] < TARGET_P50_MS,
    }
    log(f"after-action report on {backend}: {shape} {summary}")
    return figures
