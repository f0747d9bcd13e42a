"""Websocket fan-out with webhooks off and on, in one run: what 50 endpoints cost the clients.

One replica, the 2,000 clients of the fan-out matrix on the requesting city's inbox,
claims at 10 events/s. After a warm-up phase that is not compared, three phases on the
same replica and clients: no endpoints (off); 50 endpoints registered, each taking every
event the clients see (on); the endpoints paused again (off, after: how much the machine
drifted meanwhile). The ratio
compared with the target is p99 on over p99 off (the first off phase).

Deliveries are made the way the README advises where fan-out latency matters: the
replica runs with AIDMESH_WEBHOOKS_ENABLED=false and an `aidmesh webhooks` process
delivers (at its default lower CPU priority, --nice 10). The receiver answers 200 at
once; it stands for the cities' own systems, which run on other machines, so on this
one it runs at the lowest priority (nice 19) and takes only what CPU is left over.

A city may register at most 20 endpoints, so the 50 are spread over the requesting
city and the two nearest responding cities; each sees every claim on the requesting
city's requests (the claimers are theirs or its network's), which the receiver's count
shows (`webhook_deliveries` against `events x endpoints`).
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from typing import Any

from bench import fanout
from bench.harness import ROOT, log, table
from bench.stats import ratio
from bench.webhooks import _receiver
from service.commands.webhooks import pause_endpoint, register_endpoint
from service.domain.actors import SYSTEM
from service.webhooks.models import WebhookCreate
from tests import procs

ENDPOINTS = 50
PER_CITY = 20  # service.commands.webhooks.MAX_ENDPOINTS_PER_CITY
RATE = 10.0
CLIENTS = 2000

REPLICA_ENV = {
    "AIDMESH_WEBHOOK_ALLOW_HTTP": "true",
    "AIDMESH_WEBHOOK_ALLOWED_PRIVATE": '["127.0.0.1/32"]',
    # Endpoints registered meanwhile are leased within this time.
    "AIDMESH_WEBHOOK_POLL_INTERVAL_S": "0.5",
    # The replica only fans out; the worker process below delivers.
    "AIDMESH_WEBHOOKS_ENABLED": "false",
}


def _far_receiver(port: int, seen: Any, repeats: Any) -> None:
    os.nice(19)
    _receiver(port, seen, repeats)


def _worker(ctx: fanout.Context) -> subprocess.Popen[bytes]:
    """`aidmesh webhooks` on the bench's database and Redis; ready once it says so."""
    log_path = ctx.work / "fanout-webhooks-worker.log"
    env = {
        **os.environ,
        **REPLICA_ENV,
        "AIDMESH_LOG_LEVEL": "info",
        "DATABASE_URL": ctx.database_url,
        "REDIS_URL": ctx.redis_url,
        "PYTHONUNBUFFERED": "1",
    }
    proc = procs.start(
        [sys.executable, "-m", "service.cli", "webhooks", "--metrics-port", "0"],
        log_path,
        env=env,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    while "webhook worker ready" not in log_path.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            procs.end(proc)
            raise RuntimeError(f"the webhook worker did not start: see {log_path}")
        time.sleep(0.1)
    return proc


def _register(ctx: fanout.Context, port: int) -> list[int]:
    assert ctx.world is not None
    world = ctx.world
    cities = [world.hq, *[c for c in world.city_ids if c != world.hq]]
    ids = []
    for n in range(ENDPOINTS):
        issued, _ = world.executor.run_sync(
            SYSTEM,
            register_endpoint,
            WebhookCreate(
                url=f"http://127.0.0.1:{port}/hook/{n}",
                city_id=cities[n // PER_CITY],
                description=f"bench receiver {n}",
            ),
        )
        ids.append(issued.id)
    return ids


def _pause(ctx: fanout.Context, ids: list[int]) -> None:
    assert ctx.world is not None
    for endpoint_id in ids:
        ctx.world.executor.run_sync(SYSTEM, pause_endpoint, endpoint_id)


def run(ctx: fanout.Context, *, clients: int = CLIENTS, rate: float = RATE) -> dict[str, Any]:
    """The three phases; returns their rows and the comparison."""
    seen = multiprocessing.Value("q", 0)
    repeats = multiprocessing.Value("q", 0)
    port = procs.free_port()
    receiver = multiprocessing.Process(
        target=_far_receiver, args=(port, seen, repeats), daemon=True
    )
    receiver.start()
    rows: list[dict[str, Any]] = []
    worker = None
    try:
        with fanout.AidmeshTarget(ctx, 1, "fanout-webhooks", env=REPLICA_ENV) as target:
            worker = _worker(ctx)
            target.grow(clients)
            # A first phase warms the replica, clients and database up and is not
            # compared: the first measured phase was slower than the same phase later.
            target.phase(rate, label="warm-up")
            rows.append(target.phase(rate, label="webhooks off"))
            ids = _register(ctx, port)
            time.sleep(2)  # the worker leases the new endpoints (it polls every 0.5 s)
            before, repeated = seen.value, repeats.value
            on = target.phase(rate, label=f"webhooks on ({ENDPOINTS} endpoints)")
            # Deliveries still under way when the phase ends count too: wait for them,
            # then a second more for any beyond them (events besides the clients' own,
            # or duplicates, which are counted apart).
            expected = on["events"] * ENDPOINTS
            deadline = time.monotonic() + 30
            while seen.value - before < expected and time.monotonic() < deadline:
                time.sleep(0.25)
            time.sleep(1)
            on["webhook_endpoints"] = ENDPOINTS
            on["webhook_deliveries"] = seen.value - before
            on["webhook_deliveries_expected"] = expected
            on["webhook_duplicates"] = repeats.value - repeated
            rows.append(on)
            _pause(ctx, ids)
            time.sleep(1)
            rows.append(target.phase(rate, label="webhooks off (after)"))
    finally:
        procs.end(worker)
        receiver.terminate()
        receiver.join(5)
    off, on, after = (r["latency"] for r in rows)
    comparison = {
        "clients": clients,
        "rate": rate,
        "endpoints": ENDPOINTS,
        "off_p50_ms": off["p50_ms"],
        "off_p99_ms": off["p99_ms"],
        "on_p50_ms": on["p50_ms"],
        "on_p99_ms": on["p99_ms"],
        "off_after_p50_ms": after["p50_ms"],
        "off_after_p99_ms": after["p99_ms"],
        "p99_on_over_off": ratio(on["p99_ms"], off["p99_ms"]),
        "p50_on_over_off": ratio(on["p50_ms"], off["p50_ms"]),
        "webhook_deliveries": rows[1]["webhook_deliveries"],
        "webhook_deliveries_expected": rows[1]["webhook_deliveries_expected"],
        "webhook_duplicates": rows[1]["webhook_duplicates"],
        "lost": [r["lost"] for r in rows],
    }
    log(f"fanout-webhooks: {comparison}")
    return {"rows": rows, "comparison": comparison}


def print_comparison(result: dict[str, Any]) -> None:
    c = result["comparison"]
    table(
        f"Fan-out with webhooks: {c['clients']} clients @{c['rate']:g} ev/s, 1 replica, "
        f"{c['endpoints']} endpoints (target: p99 on within 20% of off)",
        ["phase", "p50 ms", "p99 ms", "max ms", "lost", "srv cpu%", "webhook deliveries"],
        [
            [
                r["label"],
                r["latency"]["p50_ms"],
                r["latency"]["p99_ms"],
                r["latency"]["max_ms"],
                r["lost"],
                r["cpu_pct"].get("servers"),
                (
                    f"{r['webhook_deliveries']}/{r['webhook_deliveries_expected']}"
                    f" ({r['webhook_duplicates']} repeated)"
                    if "webhook_deliveries" in r
                    else "-"
                ),
            ]
            for r in result["rows"]
        ],
    )
