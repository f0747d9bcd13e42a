"""Offers: offer to acceptance to the board. A responder of a peer city offers pumps to
an incident (REST), the requesting manager accepts it (REST: a request and an accepted
claim in one transaction), and a board client on the websocket sees `offer.accepted`.
One offer after another on a replica of its own; p50/p99 from the offer's POST to the
board's event, over 200 offers."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import websockets

from bench.declare import Series
from bench.harness import aidmesh_replica, log, running
from bench.seed import World, declare

PUMP = "high-capacity-pump"


async def _board_event(ws: Any, offer_id: int) -> None:
    """Wait for the board's `offer.accepted` of `offer_id`."""
    while True:
        message = json.loads(await ws.recv())
        if message.get("type") != "event":
            continue
        event = message["event"]
        if event["type"] == "offer.accepted" and event["data"]["offer"]["id"] == offer_id:
            return


async def _run(url: str, world: World, incident_id: int, count: int, warmup: int) -> Series:
    series = Series()
    responder = world.responders[0]
    offer_headers = {"Authorization": f"Bearer {responder.secret}"}
    manager_headers = {"Authorization": f"Bearer {world.manager.secret}"}
    ws_url = url.replace("http://", "ws://") + "/ws"
    async with (
        httpx.AsyncClient(base_url=url, timeout=60.0, trust_env=False) as client,
        websockets.connect(ws_url, max_size=None) as ws,
    ):
        await ws.send(json.dumps({"op": "auth", "token": world.observer.secret}))
        await ws.send(json.dumps({"op": "subscribe", "scopes": ["board"], "ref": "s"}))
        for i in range(warmup + count):
            ready = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
            at = time.perf_counter()
            made = await client.post(
                f"/api/v1/incidents/{incident_id}/offers",
                json={"resource": PUMP, "quantity": 1, "ready_at": ready},
                headers={**offer_headers, "Idempotency-Key": f"bench-{i}"},
            )
            series.statuses[made.status_code] = series.statuses.get(made.status_code, 0) + 1
            if made.status_code != 201:
                continue
            offer_id = made.json()["id"]
            seen = asyncio.create_task(_board_event(ws, offer_id))
            answered = await client.post(
                f"/api/v1/offers/{offer_id}/status",
                json={"status": "accepted"},
                headers=manager_headers,
            )
            series.statuses[answered.status_code] = series.statuses.get(answered.status_code, 0) + 1
            if answered.status_code != 200:
                seen.cancel()
                continue
            await asyncio.wait_for(seen, timeout=30)
            took = time.perf_counter() - at
            if i >= warmup:
                series.latency.add(took)
    return series


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
    incident_id = declare(world, "Offers benchmark")
    server = aidmesh_replica(
        f"offers-{backend}", database_url=database_url, redis_url=redis_url, work=work
    )
    with running([server]):
        cpu_before = server.cpu()
        series = asyncio.run(_run(server.url, world, incident_id, count, warmup))
        series.server_cpu_s = server.cpu() - cpu_before
    summary = series.latency.summary_ms()
    figures = {
        "backend": backend,
        "offers": count,
        "statuses": series.statuses,
        "latency": summary,
        "server_cpu_ms_per_offer": round(1000 * series.server_cpu_s / (warmup + count), 1),
    }
    log(f"offers on {backend}: {figures['latency']}")
    return figures
