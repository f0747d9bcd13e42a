"""Fan-out latency: N websocket clients, events from real claims, 1 or 2 replicas; the ramp;
and the naive FastAPI broadcast driven by the same clients at the same rates.

How the shared two cores are accounted for: every phase records the CPU seconds
used by the server processes, by the client processes, by this process (the
producer), by redis-server and by the whole machine. The servers' CPU per
delivery is reported separately, so a reader can tell a server that is slow from
a machine that is full; `cpu_pct` figures are percent of one core.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import producer
from bench.bustimer import BusTimer
from bench.clients import Fleet
from bench.harness import (
    HOST,
    Profiler,
    Server,
    aidmesh_replica,
    cpu_seconds,
    log,
    machine_cpu_seconds,
    start_all,
    table,
)
from bench.seed import World, declare, event_template, last_seqs, naive_payload_factory
from bench.seed import raise_request as seed_request
from bench.stats import Histogram, middle

NAIVE_CHANNEL = "naive:events"
# More than 8 claims in flight on one replica exhaust its database pool (each claim holds
# the auth dependency's connection while it waits for a write connection), and the
# replica answers 503 after the pool timeout: the producer stays under that.
CLAIMS_IN_FLIGHT_PER_REPLICA = 6
_phase_ids = itertools.count(1)


def phase_duration(rate: float, override: float | None) -> float:
    if override:
        return override
    if rate <= 2:
        return 20.0
    if rate <= 100:
        return 10.0
    return 5.0


@dataclass
class Context:
    """What the fan-out benchmarks share within a run."""

    work: Path
    database_url: str
    redis_url: str
    redis_pid: int | None
    client_procs: int
    client_impl: str
    duration: float | None
    drain_max_s: float
    incidents: int = 8
    world: World | None = None
    incident_ids: list[int] = field(default_factory=list)
    pool: producer.RequestPool = field(default_factory=producer.RequestPool)
    template: bytes = b""
    naive_seq: int = 0
    bus: BusTimer | None = None
    profiler: Profiler | None = None

    def prepare(self, world: World) -> None:
        """Incidents with large requests; a template event for the naive payload."""
        self.world = world
        for i in range(self.incidents):
            incident_id = declare(world, f"Fan-out benchmark {i}")
            self.incident_ids.append(incident_id)
            self.top_up(incident_id, 20_000)
        self.template = event_template(
            world, next(iter(self.pool.by_incident[self.incident_ids[0]]))[0]
        )

    def top_up(self, incident_id: int, units: int) -> None:
        assert self.world is not None
        while self.pool.capacity_of(incident_id) < units:
            request_id = seed_request(self.world, incident_id, 10_000)
            self.pool.add(incident_id, request_id, 10_000 - 2)

    def ensure_capacity(self, events: int) -> None:
        per_incident = events // max(1, len(self.incident_ids)) + 100
        for incident_id in self.incident_ids:
            self.top_up(incident_id, per_incident)


class CpuWindow:
    """CPU seconds used by each party between `start()` and `stop()`."""

    def __init__(self, servers: list[Server], fleet: Fleet, redis_pid: int | None) -> None:
        self.servers = servers
        self.fleet = fleet
        self.redis_pid = redis_pid

    def _sample(self) -> dict[str, Any]:
        busy, _total = machine_cpu_seconds()
        return {
            "servers": sum(s.cpu() for s in self.servers),
            "clients": self.fleet.cpu(),
            "producer": time.process_time(),
            "redis": cpu_seconds(self.redis_pid) if self.redis_pid else 0.0,
            "postgres": _postgres_cpu(),
            "machine": busy,
            "wall": time.monotonic(),
        }

    def start(self) -> None:
        self.before = self._sample()

    def stop(self) -> dict[str, Any]:
        after = self._sample()
        wall = after["wall"] - self.before["wall"]
        pg_before, pg_after = self.before.pop("postgres"), after.pop("postgres")
        used = {k: after[k] - self.before[k] for k in after if k != "wall"}
        # Backends that came or went in between count from zero or are left out.
        used["postgres"] = sum(v - pg_before.get(pid, 0.0) for pid, v in pg_after.items())
        ours = sum(used[k] for k in ("servers", "clients", "producer", "redis", "postgres"))
        used["other"] = max(0.0, used["machine"] - ours)
        pct = {k: round(100 * v / wall, 1) for k, v in used.items()} if wall > 0 else {}
        return {
            "window_s": round(wall, 2),
            "cpu_s": {k: round(v, 2) for k, v in used.items()},
            "cpu_pct": pct,
        }


def _postgres_cpu() -> dict[int, float]:
    """CPU seconds of every postgres process on the machine (ours and anyone else's), by PID."""
    found: dict[int, float] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() in ("postgres", "postmaster"):
                found[int(proc.name)] = cpu_seconds(int(proc.name))
        except OSError:
            continue
    return found


def _settle(fleet: Fleet, expected_connected: int, limit_s: float = 60.0) -> dict[str, int]:
    """Wait until every client is connected (again, after slow-consumer closes) and no
    event of an earlier phase is still arriving, so phases do not overlap."""
    deadline = time.monotonic() + limit_s
    counts = fleet.counts(0)
    quiet_since, tagged = time.monotonic(), counts["tagged"]
    while time.monotonic() < deadline:
        time.sleep(0.25)
        counts = fleet.counts(0)
        if counts["tagged"] != tagged:
            quiet_since, tagged = time.monotonic(), counts["tagged"]
        if counts["connected"] >= expected_connected and time.monotonic() - quiet_since >= 1.0:
            break
    return counts


def run_phase(
    fleet: Fleet,
    servers: list[Server],
    *,
    system: str,
    clients: int,
    rate: float,
    duration_s: float,
    produce: Callable[[int], producer.Produced],
    redis_pid: int | None,
    drain_max_s: float,
    bus: BusTimer | None = None,
    profiler: Profiler | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One measured phase: produce at `rate` for `duration_s`, wait for the deliveries."""
    phase = next(_phase_ids)
    settled = _settle(fleet, clients)
    before = fleet.stats(phase)
    metrics_before = [s.metrics() for s in servers] if system == "aidmesh" else []
    cpu = CpuWindow(servers, fleet, redis_pid)
    if profiler is not None:
        profiler.start(f"{system}-r{len(servers)}-n{clients}-{rate:g}", [s.pid for s in servers])
    cpu.start()
    produced = produce(phase)
    expected = produced.ok * settled["connected"]
    produced_at = time.monotonic()
    last, last_change = -1, time.monotonic()
    while True:
        delivered = fleet.counts(phase)["delivered"]
        now = time.monotonic()
        if delivered >= expected:
            break
        if delivered != last:
            last, last_change = delivered, now
        elif now - last_change > 5:
            break
        if now - produced_at > drain_max_s:
            break
        time.sleep(0.25)
    drain_s = time.monotonic() - produced_at
    used = cpu.stop()
    if profiler is not None:
        profiler.stop()
    stats = fleet.stats(phase)
    hist: Histogram = stats["hist"]
    delivered = stats["delivered"]
    row: dict[str, Any] = {
        "system": system,
        "replicas": len(servers),
        "clients": clients,
        "connected_at_start": settled["connected"],
        "rate": rate,
        "duration_s": duration_s,
        "producer": produced.summary(),
        "events": produced.ok,
        "expected_deliveries": expected,
        "delivered": delivered,
        "delivered_ratio": round(delivered / expected, 5) if expected else None,
        "lost": max(0, expected - delivered),
        "duplicates": stats["dups"] - before["dups"],
        "seq_gaps": stats["gaps"] - before["gaps"],
        "reconnects": stats["reconnects"] - before["reconnects"],
        "closes_total": stats["closes"],
        "drain_s": round(drain_s, 2),
        "deliveries_per_s": round(delivered / max(produced.elapsed_s, 1e-9), 1),
        "latency": hist.summary_ms(),
        "latency_from_bus": (
            _from_bus(stats["per_event"], bus.times(phase)) if bus is not None else None
        ),
        **used,
        "server_cpu_us_per_delivery": (
            round(1e6 * used["cpu_s"]["servers"] / delivered, 2) if delivered else None
        ),
        "client_cpu_us_per_delivery": (
            round(1e6 * used["cpu_s"]["clients"] / delivered, 2) if delivered else None
        ),
        **(extra or {}),
    }
    if metrics_before:
        after = [s.metrics() for s in servers]
        for key in ("aidmesh_gap_filled_events_total", "aidmesh_ws_slow_consumers_dropped_total"):
            row[key.removeprefix("aidmesh_")] = sum(
                a.get(key, 0) - b.get(key, 0) for a, b in zip(after, metrics_before, strict=True)
            )
    lat = row["latency"]
    fan = row["latency_from_bus"] or {}
    log(
        f"{system} r={len(servers)} n={clients} {rate:g} ev/s: {produced.ok} events "
        f"({produced.rate:.0f}/s), delivered {delivered}/{expected}, "
        f"p50 {lat['p50_ms']} p99 {lat['p99_ms']} max {lat['max_ms']} ms "
        f"(from bus: p50 {fan.get('p50_ms')} p99 {fan.get('p99_ms')}), "
        f"claim/publish p50 {produced.latency.summary_ms()['p50_ms']} "
        f"p99 {produced.latency.summary_ms()['p99_ms']} ms, failed {dict(produced.failed)}, "
        f"late {produced.behind}, not sent {produced.unsent}, duplicates {row['duplicates']}, "
        f"seq gaps {row['seq_gaps']}; cpu% {used['cpu_pct']}"
    )
    return row


def _from_bus(per_event: dict[str, Any], bus_times: dict[str, float]) -> dict[str, Any]:
    """Receive time minus the time the event appeared on the Redis bus, over all deliveries."""
    hist = Histogram()
    unmatched = 0
    bus_lag = Histogram()
    for key, buckets in per_event.items():
        at_bus = bus_times.get(key)
        if at_bus is None:
            unmatched += sum(buckets.values())
            continue
        offset = at_bus - float(key)
        bus_lag.add(max(0.0, offset))
        for b, count in buckets.items():
            hist.add(max(0.0, middle(int(b)) - offset), count)
    summary: dict[str, Any] = hist.summary_ms()
    summary["unmatched"] = unmatched
    summary["produce_to_bus"] = bus_lag.summary_ms()
    return summary


# aidmesh -----------------------------------------------------------------------------------------


class AidmeshTarget:
    """Replicas, their clients and the claim producer."""

    def __init__(
        self, ctx: Context, replicas: int, tag: str, env: dict[str, str] | None = None
    ) -> None:
        self.ctx = ctx
        self.servers = [
            aidmesh_replica(
                f"{tag}-replica-{i}",
                database_url=ctx.database_url,
                redis_url=ctx.redis_url,
                work=ctx.work,
                **(env or {}),
            )
            for i in range(replicas)
        ]
        self.fleet: Fleet | None = None
        self.clients = 0

    def __enter__(self) -> AidmeshTarget:
        start_all(self.servers)
        self.fleet = Fleet(self.ctx.client_procs)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fleet is not None:
            self.fleet.close()
        for server in self.servers:
            server.stop()

    def grow(self, clients: int) -> dict[str, Any]:
        """Connect clients until `clients` are open, subscribed to the requesting city's inbox."""
        assert self.fleet is not None and self.ctx.world is not None
        more = clients - self.clients
        if more <= 0:
            return {"ok": 0, "failed": 0, "seconds": 0}
        world = self.ctx.world
        since = last_seqs(world, self.ctx.incident_ids)
        log(f"aidmesh: connecting {more} clients to {len(self.servers)} replica(s)")
        result = self.fleet.connect(
            more,
            urls=[s.ws_url for s in self.servers],
            mode="aidmesh",
            token=world.observer.secret,
            scopes=[f"city:{world.hq}"],
            since={str(k): v for k, v in since.items()},
            impl=self.ctx.client_impl,
            concurrency=max(16, 128 // len(self.fleet.pipes)),
            timeout_s=600,
        )
        self.clients += result["ok"]
        log(f"aidmesh: {result}")
        return result

    def phase(self, rate: float, *, label: str = "matrix") -> dict[str, Any]:
        assert self.fleet is not None and self.ctx.world is not None
        duration = phase_duration(rate, self.ctx.duration)
        self.ctx.ensure_capacity(int(rate * duration * 1.2) + 10)
        urls = [s.url for s in self.servers]
        tokens = [t.secret for t in self.ctx.world.responders]

        def produce(phase: int) -> producer.Produced:
            return asyncio.run(
                producer.produce_claims(
                    urls,
                    tokens,
                    self.ctx.pool,
                    rate=rate,
                    duration_s=duration,
                    phase=phase,
                    max_inflight=CLAIMS_IN_FLIGHT_PER_REPLICA * len(urls),
                )
            )

        return run_phase(
            self.fleet,
            self.servers,
            system="aidmesh",
            clients=self.clients,
            rate=rate,
            duration_s=duration,
            produce=produce,
            redis_pid=self.ctx.redis_pid,
            drain_max_s=self.ctx.drain_max_s,
            bus=self.ctx.bus,
            profiler=self.ctx.profiler,
            extra={"label": label, "scope": "city inbox", "rss_mb": _rss_mb(self.servers)},
        )


def _rss_mb(servers: list[Server]) -> list[float]:
    out = []
    for s in servers:
        with contextlib.suppress(OSError):
            out.append(round(s.rss() / 2**20, 1))
    return out


# naive -------------------------------------------------------------------------------------------


# The servers a NaiveTarget can run: the naive app under uvicorn's defaults, the same
# with permessage-deflate off, and the floor (bench/floor_server.py).
_UVICORN_NAIVE = ["-m", "uvicorn", "bench.naive_app:app", "--host", HOST, "--log-level", "warning"]
NAIVE_SYSTEMS = {
    "naive": _UVICORN_NAIVE,
    "naive-nodeflate": [*_UVICORN_NAIVE, "--ws-per-message-deflate", "false"],
    "floor": ["-m", "bench.floor_server", "--host", HOST],
}


class NaiveTarget:
    """A server fed by PUBLISHes straight to Redis (the naive app or the floor), its
    clients and the publisher."""

    def __init__(self, ctx: Context, *, system: str = "naive") -> None:
        import sys

        self.ctx = ctx
        self.system = system
        self.servers = [
            Server(
                name=system,
                args=[sys.executable, *NAIVE_SYSTEMS[system]],
                env={"NAIVE_REDIS_URL": ctx.redis_url, "NAIVE_CHANNEL": NAIVE_CHANNEL},
                log_path=ctx.work / f"{system}.log",
            )
        ]
        self.fleet: Fleet | None = None
        self.clients = 0
        self.make = naive_payload_factory(ctx.template)

    def __enter__(self) -> NaiveTarget:
        start_all(self.servers)
        self._wait_subscribed()
        self.fleet = Fleet(self.ctx.client_procs)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fleet is not None:
            self.fleet.close()
        for server in self.servers:
            server.stop()

    def _wait_subscribed(self) -> None:
        import redis

        client = redis.Redis.from_url(self.ctx.redis_url)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if dict(client.pubsub_numsub(NAIVE_CHANNEL)).get(NAIVE_CHANNEL.encode(), 0) >= 1:
                    return
                time.sleep(0.05)
            raise RuntimeError(f"{self.system}: the server did not subscribe to Redis")
        finally:
            client.close()

    def grow(self, clients: int) -> dict[str, Any]:
        assert self.fleet is not None
        more = clients - self.clients
        if more <= 0:
            return {"ok": 0, "failed": 0, "seconds": 0}
        log(f"{self.system}: connecting {more} clients")
        result = self.fleet.connect(
            more,
            urls=[s.ws_url for s in self.servers],
            mode="naive",
            impl=self.ctx.client_impl,
            concurrency=max(16, 128 // len(self.fleet.pipes)),
            timeout_s=600,
        )
        self.clients += result["ok"]
        log(f"{self.system}: {result}")
        return result

    def phase(self, rate: float, *, label: str = "matrix") -> dict[str, Any]:
        assert self.fleet is not None
        duration = phase_duration(rate, self.ctx.duration)

        def produce(phase: int) -> producer.Produced:
            first = self.ctx.naive_seq + 1
            result = asyncio.run(
                producer.produce_publishes(
                    self.ctx.redis_url,
                    NAIVE_CHANNEL,
                    self.make,
                    rate=rate,
                    duration_s=duration,
                    phase=phase,
                    first_seq=first,
                )
            )
            # The last seq sent: the next phase goes on from it without a gap.
            self.ctx.naive_seq = first + result.issued - 1
            return result

        return run_phase(
            self.fleet,
            self.servers,
            system=self.system,
            clients=self.clients,
            rate=rate,
            duration_s=duration,
            produce=produce,
            redis_pid=self.ctx.redis_pid,
            drain_max_s=self.ctx.drain_max_s,
            bus=self.ctx.bus,
            profiler=self.ctx.profiler,
            extra={
                "label": label,
                "deflate": self.system == "naive",
                "rss_mb": _rss_mb(self.servers),
            },
        )


# The ramp ----------------------------------------------------------------------------------------


def ramp(
    target: AidmeshTarget | NaiveTarget,
    *,
    start_deliveries_per_s: float = 10_000,
    factor: float = 1.4,
    max_rate: float = 2_000,
    step_s: float = 6.0,
    min_events: int = 40,
    max_step_s: float = 15.0,
    max_steps: int = 14,
) -> dict[str, Any]:
    """Raise the event rate step by step until p99 passes 1 s or deliveries are lost.

    Each step lasts `step_s`, or long enough for `min_events` events (at most
    `max_step_s`), so that one slow claim cannot decide a step on its own."""
    clients = target.clients
    rate = max(0.5, round(start_deliveries_per_s / max(1, clients), 1))
    saved = target.ctx.duration
    target.ctx.duration = step_s
    steps: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    try:
        for _ in range(max_steps):
            target.ctx.duration = min(max_step_s, max(step_s, min_events / rate))
            row = target.phase(rate, label="ramp")
            steps.append(row)
            p99 = row["latency"]["p99_ms"]
            ok = (
                p99 is not None
                and p99 <= 1000
                and row["lost"] == 0
                and row["producer"]["achieved_rate"] >= 0.9 * rate
            )
            if not ok:
                break
            best = row
            if rate >= max_rate:
                break
            rate = round(rate * factor, 1)
    finally:
        target.ctx.duration = saved
    return {
        "clients": clients,
        "sustained_events_per_s": best["producer"]["achieved_rate"] if best else 0.0,
        "sustained_deliveries_per_s": best["deliveries_per_s"] if best else 0.0,
        "p99_ms_at_sustained": best["latency"]["p99_ms"] if best else None,
        "first_failing_step": (
            None
            if not steps or steps[-1] is best
            else {
                "reason": _why_failed(steps[-1]),
                "rate": steps[-1]["rate"],
                "p99_ms": steps[-1]["latency"]["p99_ms"],
                "lost": steps[-1]["lost"],
                "achieved_rate": steps[-1]["producer"]["achieved_rate"],
            }
        ),
        "steps": steps,
    }


def _why_failed(row: dict[str, Any]) -> str:
    p99 = row["latency"]["p99_ms"]
    if row["lost"]:
        return "lost deliveries"
    if p99 is None or p99 > 1000:
        return "p99 over 1 s"
    machine = (row.get("cpu_pct") or {}).get("machine")
    return (
        f"the producer made {row['producer']['achieved_rate']:g} of {row['rate']:g} events/s "
        f"(machine CPU {machine}% of one core)"
    )


def print_rows(title: str, rows: list[dict[str, Any]]) -> None:
    table(
        title,
        [
            "system",
            "repl",
            "clients",
            "ev/s",
            "got ev/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "bus p50",
            "bus p99",
            "delivered",
            "lost",
            "dup",
            "srv cpu%",
            "cli cpu%",
            "other%",
            "srv us/dlv",
        ],
        [
            [
                r["system"],
                r["replicas"],
                r["clients"],
                r["rate"],
                r["producer"]["achieved_rate"],
                r["latency"]["p50_ms"],
                r["latency"]["p99_ms"],
                r["latency"]["max_ms"],
                (r["latency_from_bus"] or {}).get("p50_ms"),
                (r["latency_from_bus"] or {}).get("p99_ms"),
                f"{r['delivered']}/{r['expected_deliveries']}",
                r["lost"],
                r["duplicates"],
                r["cpu_pct"].get("servers"),
                r["cpu_pct"].get("clients"),
                r["cpu_pct"].get("other"),
                r["server_cpu_us_per_delivery"],
            ]
            for r in rows
        ],
    )
