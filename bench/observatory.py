"""Observatory: a network's public feeds over 1,000 closed incidents (5 requests and 10
claims each; a fifth of the cities opted out), read one after another from a replica:
the chart series, the GeoJSON and the aid-flow CSV; p50/p99 of each (target: p50 < 500 ms).

The closed history is written in bulk, in the shape the commands write it (incidents,
requests, claims and the `request.fulfilled` events the clocks read): declaring and
running 1,000 incidents through the API would take the run's whole budget, and only
the read is measured.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert
from sqlmodel import select

from bench.harness import aidmesh_replica, log, running
from bench.seed import HQ, World
from bench.stats import Histogram
from service.commands import observatory
from service.domain.actors import SYSTEM
from service.domain.events import EventType
from service.persistence.tables import AidRequest, Claim, Event, Incident, NetworkMembership

TARGET_P50_MS = 500.0
INCIDENTS = 1000
REQUESTS_PER_INCIDENT = 5
RESOURCES = [
    ("personnel", "paramedic-team"),
    ("infrastructure", "high-capacity-pump"),
    ("infrastructure", "generator-100kw"),
    ("personnel", "gis-analyst"),
]
FEEDS = {"summary": "", "geojson": "/incidents.geojson", "csv": "/flows.csv"}


def seed_history(world: World, *, incidents: int = INCIDENTS, seed: int = 22) -> int:
    """Closed incidents of the requesting city, helped by the others; returns the network id."""
    rng = random.Random(seed)
    ex = world.executor
    network_id = _network_id(world)
    ex.run_sync(SYSTEM, observatory.set_network_settings, network_id, "CC-BY-4.0", 0)
    helpers = world.city_ids[1:]
    for i, city_id in enumerate(world.city_ids):
        ex.run_sync(SYSTEM, observatory.set_city_opt_in, city_id, i % 5 != 4)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with ex.db.engine.begin() as conn:
        incident_rows = []
        for n in range(incidents):
            declared = start + timedelta(hours=8 * n)
            incident_rows.append(
                {
                    "city_id": world.hq,
                    "incident_type": rng.choice(["flood", "wildfire", "heatwave", "earthquake"]),
                    "title": f"Incident {n}",
                    "severity": rng.choice(["moderate", "severe", "extreme"]),
                    "description": "",
                    "lat": HQ[0] + rng.uniform(-0.1, 0.1),
                    "lon": HQ[1] + rng.uniform(-0.1, 0.1),
                    "exercise": n % 20 == 0,
                    "status": "closed",
                    "last_seq": 0,
                    "ring0_radius_km": 50.0,
                    "ring_intervals_s": [1800, 3600],
                    "claim_acceptance_timeout_s": 900,
                    "declared_at": declared,
                    "closed_at": declared + timedelta(hours=6),
                }
            )
        incident_ids = [
            row[0]
            for row in conn.execute(
                insert(Incident).returning(Incident.id),  # type: ignore[arg-type]
                incident_rows,
            ).all()
        ]
        _requests_and_claims(conn, rng, world.hq, incident_ids, incident_rows, helpers)
    return network_id


def _requests_and_claims(
    conn: Any,
    rng: random.Random,
    hq: int,
    incident_ids: list[int],
    incident_rows: list[dict[str, Any]],
    helpers: list[int],
) -> None:
    request_rows = []
    for incident_id, incident in zip(incident_ids, incident_rows, strict=True):
        for r in range(REQUESTS_PER_INCIDENT):
            kind, resource = RESOURCES[r % len(RESOURCES)]
            raised = incident["declared_at"] + timedelta(minutes=r)
            request_rows.append(
                {
                    "incident_id": incident_id,
                    "city_id": hq,
                    "kind": kind,
                    "resource": resource,
                    "quantity": 4,
                    "claimed_quantity": 4,
                    "delivered_quantity": 4,
                    "priority": "high",
                    "report_to": "",
                    "notes": "",
                    "status": "fulfilled" if rng.random() < 0.6 else "cancelled",
                    "ring": 0,
                    "ring_entered_at": raised,
                    "created_at": raised,
                    "updated_at": raised,
                }
            )
    request_ids = [
        row[0]
        for row in conn.execute(
            insert(AidRequest).returning(AidRequest.id),  # type: ignore[arg-type]
            request_rows,
        ).all()
    ]
    claim_rows, event_rows = [], []
    seqs: dict[int, int] = {}
    for request_id, request in zip(request_ids, request_rows, strict=True):
        raised = request["created_at"]
        for c, city_id in enumerate(rng.sample(helpers, 2)):
            claimed = raised + timedelta(minutes=rng.randint(1, 90))
            claim_rows.append(
                {
                    "request_id": request_id,
                    "incident_id": request["incident_id"],
                    "city_id": city_id,
                    "quantity": 2,
                    "status": "released" if c == 0 else rng.choice(["on_site", "declined"]),
                    "note": "",
                    "idempotency_key": f"bench-{request_id}-{c}",
                    "body_fingerprint": "0" * 64,
                    "created_at": claimed,
                    "updated_at": claimed,
                }
            )
        if request["status"] == "fulfilled":
            incident_id = request["incident_id"]
            seqs[incident_id] = seqs.get(incident_id, 0) + 1
            event_rows.append(
                {
                    "event_id": str(uuid.uuid4()),
                    "incident_id": incident_id,
                    "seq": seqs[incident_id],
                    "type": EventType.REQUEST_FULFILLED.value,
                    "occurred_at": raised + timedelta(minutes=rng.randint(90, 300)),
                    "actor_role": "responder",
                    "data": {"request": {"id": request_id, "status": "fulfilled"}},
                    "audience": {"cities": [], "viewers": []},
                }
            )
    conn.execute(insert(Claim), claim_rows)
    if event_rows:
        conn.execute(insert(Event), event_rows)


def _network_id(world: World) -> int:
    with world.executor.db.read() as session:
        found = session.exec(
            select(NetworkMembership.network_id).where(NetworkMembership.city_id == world.hq)
        ).first()
    assert found is not None
    return int(found)


def run(
    world: World,
    *,
    backend: str,
    database_url: str,
    redis_url: str,
    work: Any,
    count: int = 30,
    warmup: int = 3,
) -> dict[str, Any]:
    started = time.perf_counter()
    network_id = seed_history(world)
    seeded_s = time.perf_counter() - started
    server = aidmesh_replica(
        f"observatory-{backend}", database_url=database_url, redis_url=redis_url, work=work
    )
    latencies = {name: Histogram() for name in FEEDS}
    sizes: dict[str, int] = {}
    published = 0
    statuses: dict[int, int] = {}
    with (
        running([server]),
        httpx.Client(base_url=server.url, timeout=60.0, trust_env=False) as client,
    ):
        base = f"/api/v1/observatory/networks/{network_id}"
        cpu_before = server.cpu()
        for i in range(warmup + count):
            for name, suffix in FEEDS.items():
                at = time.perf_counter()
                # Past any shared cache, as its first reader after five minutes would be.
                response = client.get(base + suffix, headers={"Cache-Control": "no-cache"})
                took = time.perf_counter() - at
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if i >= warmup:
                    latencies[name].add(took)
                sizes[name] = len(response.content)
                if name == "summary" and response.status_code == 200:
                    published = response.json()["incident_count"]
        server_cpu_s = server.cpu() - cpu_before
    summary = {name: h.summary_ms() for name, h in latencies.items()}
    figures = {
        "backend": backend,
        "incidents_closed": INCIDENTS,
        "incidents_published": published,
        "requests_per_incident": REQUESTS_PER_INCIDENT,
        "seed_s": round(seeded_s, 1),
        "reads_per_feed": count,
        "statuses": statuses,
        "bytes": sizes,
        "latency": summary,
        "server_cpu_ms_per_read": round(1000 * server_cpu_s / ((warmup + count) * len(FEEDS)), 1),
        "target_p50_ms": TARGET_P50_MS,
        "met": all(
            s["p50_ms"] is not None and s["p50_ms"] < TARGET_P50_MS for s in summary.values()
        )
        and set(statuses) == {200},
    }
    log(f"observatory on {backend}: {summary}")
    return figures
