"""D11: the Redis master killed (kill -9) under load, with Sentinel failing over to its replica.

A master, a replica and three Sentinels are private redis-server processes; two
aidmesh replicas reach them through `REDIS_URL=redis+sentinel://…`. Claims go over
REST and over websockets, watchers are subscribed on both replicas, tickets are
issued on one replica and redeemed on the other. Then the master dies. Writes go on
being acknowledged (the database is the record; only what needs Redis may answer
the documented JSON 503, and nothing hangs), both buses follow the Sentinels to the
promoted replica, and every client ends with the events table's gap-free sequence.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.faults.mixed_load import MixedLoad, claimers, watchers
from tests.history import History, check_against_table, live_pause_s, load_truth
from tests.procs import SentinelDeployment
from tests.realtime.live_client import Rest, caught_up, setup_incidents, wait_until
from tests.replicas import Cluster, cluster

RECONNECTS = "aidmesh_bus_reconnects_total"
RECEIVED = "aidmesh_bus_events_received_total"


@pytest.fixture(scope="module")
def sentinel_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Cluster, SentinelDeployment]]:
    tmp = tmp_path_factory.mktemp("d11")
    with ExitStack() as stack:
        deployment = SentinelDeployment(tmp / "redis", down_after_ms=1000, failover_timeout_ms=3000)
        stack.callback(deployment.stop)
        deployment.start()
        built = stack.enter_context(cluster(tmp, replicas=2, redis_url=deployment.url))
        yield built, deployment


async def _failover_times(
    built: Cluster, deployment: SentinelDeployment, killed_at: float, old_port: int
) -> dict[str, float]:
    """Seconds from the kill until the Sentinels name the new master, and until each
    replica's bus has resubscribed (its reconnect counter moved)."""
    before = {r.name: r.metrics().get(RECONNECTS, 0.0) for r in built.replicas}
    times: dict[str, float] = {}
    deadline = killed_at + 30
    while time.monotonic() < deadline and len(times) < 1 + len(built.replicas):
        if "promoted" not in times:
            port = await asyncio.to_thread(deployment.master_port)
            if port is not None and port != old_port:
                times["promoted"] = time.monotonic() - killed_at
        for replica in built.replicas:
            if replica.name not in times:
                now = await asyncio.to_thread(replica.metrics)
                if now.get(RECONNECTS, 0.0) > before[replica.name]:
                    times[replica.name] = time.monotonic() - killed_at
        await asyncio.sleep(0.05)
    return times


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_d11_master_killed_writes_go_on_and_every_client_ends_gap_free(
    sentinel_cluster: tuple[Cluster, SentinelDeployment],
) -> None:
    built, deployment = sentinel_cluster
    manager = built.headers("manager", "nairobi")
    old_port = deployment.master_port()
    assert old_port == deployment.master.port
    figures: dict[str, object] = {}

    async def scenario() -> tuple[History, MixedLoad]:
        history = History()
        rest = Rest([r.url for r in built.replicas], history, timeout_s=8.0)
        incidents = await setup_incidents(rest, manager, 2, "d11")
        claiming = claimers(built, history, incidents)
        clients = [*watchers(built, history, incidents, rotate=False), *claiming]
        load = MixedLoad(built, history, incidents, claiming, rest)
        try:
            assert await wait_until(lambda: all(c.live.is_set() for c in clients), 15)
            load.start()
            await asyncio.sleep(2.0)
            killed_at = time.monotonic()
            deployment.kill_master()
            times = await _failover_times(built, deployment, killed_at, old_port)
            figures["failover s"] = {k: round(v, 2) for k, v in times.items()}
            received_before = [r.metrics().get(RECEIVED, 0.0) for r in built.replicas]
            await asyncio.sleep(3.0)
            await load.stop()
            recovered_at = killed_at + max(times.values(), default=0.0)
            pause_max, pause_median = live_pause_s(history, killed_at - 1.0, recovered_at + 1.0)
            figures["live pause s (max, median over clients)"] = (
                round(pause_max, 2),
                round(pause_median, 2),
            )
            truth = load_truth(built.database_url, incidents)
            assert await caught_up(clients, truth.last_seq, 20), built.logs()
            await asyncio.sleep(0.5)
            # Live delivery runs over the new master again, not only from the database:
            # each bus received events published after it resubscribed.
            received = [r.metrics().get(RECEIVED, 0.0) for r in built.replicas]
            figures["bus events per replica"] = [
                int(n - b) for n, b in zip(received, received_before, strict=True)
            ]
            assert len(times) == 1 + len(built.replicas), (times, built.logs())
        finally:
            load._stop.set()
            for client in clients:
                await client.stop()
            await rest.aclose()
        return history, load

    history, load = asyncio.run(scenario())
    summary = check_against_table(history, built.database_url)
    writes = {op: sum(1 for w in history.writes if w.op == op) for op in ("claim", "ws-claim")}
    print(
        f"\nD11 Redis master kill -9 behind 3 Sentinels: {figures};"
        f" writes {writes}, statuses {dict(history.statuses())};"
        f" tickets {dict(load.tickets)}, redeemed on the other replica"
        f" {load.cross_replica_redeems};"
        f" hangs {load.hangs()}\n{summary}"
    )
    assert load.hangs() == 0
    assert not load.unexpected_refusals(), load.unexpected_refusals()[:5]
    assert summary.complete, summary
    assert writes["claim"] > 50 and writes["ws-claim"] > 50, writes
    assert load.cross_replica_redeems > 5, load.tickets
    assert all(n > 0 for n in figures["bus events per replica"]), figures  # type: ignore[attr-defined]
