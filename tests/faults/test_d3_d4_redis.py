"""D3 and D4: Redis restarted without persistence, and Redis frozen, while writes go on.

Both run against a private redis-server (never the shared one), killed, paused and
restarted by its PID. Redis is the fast path; the events table is the record, so
every client must end with every event and REST writes must not fail.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.history import History, check_against_table, load_truth
from tests.realtime.live_client import (
    LiveClient,
    Rest,
    caught_up,
    produce,
    setup_incidents,
    wait_until,
)
from tests.replicas import Cluster, cluster_fixture

cluster = cluster_fixture(replicas=2, private_redis=True)

RESTARTS = 5
# RELIABILITY's D4 freezes Redis for 30 s; 5 s exercises the same paths (publish
# timeouts, a frozen subscriber, delivery from the poll) and keeps CI time down.
PAUSE_S = 5.0


def _clients(cluster: Cluster, history: History, incidents: dict[int, int]) -> list[LiveClient]:
    scopes = [f"incident:{i}" for i in incidents]
    return [
        LiveClient(
            f"{r.name}-{n}",
            [r.ws_url],
            cluster.token("observer", "thika"),
            scopes,
            history,
            rotate=False,
        ).start()
        for r in cluster.replicas
        for n in range(3)
    ]


def _resubscribes(cluster: Cluster) -> dict[str, int]:
    return {r.name: r.log_text().count("event bus resubscribed") for r in cluster.replicas}


@pytest.mark.slow
def test_d3_redis_restarts_under_load_lose_nothing(cluster: Cluster) -> None:
    redis_server = cluster.redis_server
    assert redis_server is not None
    manager = cluster.headers("manager", "nairobi")
    responder = cluster.headers("responder", "thika")
    before = _resubscribes(cluster)

    async def chaos() -> None:
        for _ in range(RESTARTS):
            await asyncio.sleep(1.0)
            await asyncio.to_thread(redis_server.restart)

    async def scenario() -> History:
        history = History()
        rest = Rest([r.url for r in cluster.replicas], history)
        incidents = await setup_incidents(rest, manager, 2, "d3")
        clients = _clients(cluster, history, incidents)
        try:
            assert await wait_until(lambda: all(c.live.is_set() for c in clients), 15)
            started = time.monotonic()
            await asyncio.gather(
                chaos(),
                produce(rest, manager, responder, incidents, 450, workers=2, pause_s=0.02),
            )
            print(
                f"\nD3: writes and {RESTARTS} Redis restarts took {time.monotonic() - started:.1f}s"
            )
            truth = load_truth(cluster.database_url, incidents)
            assert await caught_up(clients, truth.last_seq, 20), cluster.logs()
            await asyncio.sleep(0.5)
        finally:
            for client in clients:
                await client.stop()
            await rest.aclose()
        return history

    history = asyncio.run(scenario())
    summary = check_against_table(history, cluster.database_url)
    after = _resubscribes(cluster)
    noticed = {name: after[name] - before[name] for name in after}
    print(
        f"D3 Redis kill -9 and restart x{RESTARTS}: write statuses {dict(history.statuses())};"
        f" bus resubscriptions noticed per replica {noticed}\n{summary}"
    )
    assert summary.complete, summary
    assert not [s for s in history.statuses() if s is None or s >= 500], history.statuses()


@pytest.mark.slow
def test_d4_redis_frozen_writes_keep_succeeding_and_delivery_catches_up(cluster: Cluster) -> None:
    redis_server = cluster.redis_server
    assert redis_server is not None
    manager = cluster.headers("manager", "nairobi")
    responder = cluster.headers("responder", "thika")
    figures: dict[str, object] = {}

    async def scenario() -> History:
        history = History()
        rest = Rest([r.url for r in cluster.replicas], history)
        incidents = await setup_incidents(rest, manager, 2, "d4")
        clients = _clients(cluster, history, incidents)
        stop = asyncio.Event()

        async def writes() -> None:
            while not stop.is_set():
                await produce(rest, manager, responder, incidents, 10, workers=2, pause_s=0.02)

        try:
            assert await wait_until(lambda: all(c.live.is_set() for c in clients), 15)
            load = asyncio.ensure_future(writes())
            await asyncio.sleep(1.5)
            redis_server.pause()
            paused_at, writes_before = time.monotonic(), len(history.writes)
            try:
                await asyncio.sleep(PAUSE_S)
                # While Redis is frozen, clients still get events, from the poll.
                truth = load_truth(cluster.database_url, incidents)
                figures["delivered while frozen"] = await caught_up(clients, truth.last_seq, 5)
                figures["writes while frozen"] = len(history.writes) - writes_before
            finally:
                redis_server.resume()
            frozen = history.writes[writes_before:]
            figures["slowest write while frozen s"] = round(max(w.took_s for w in frozen), 2)
            figures["frozen for s"] = round(time.monotonic() - paused_at, 1)
            await asyncio.sleep(3.0)
            stop.set()
            await load

            # Live delivery over Redis resumed: each replica's bus receives new events.
            received = [
                r.metrics().get("aidmesh_bus_events_received_total", 0.0) for r in cluster.replicas
            ]
            await produce(rest, manager, responder, incidents, 20, workers=1)
            truth = load_truth(cluster.database_url, incidents)
            assert await caught_up(clients, truth.last_seq, 15), cluster.logs()
            await asyncio.sleep(0.3)
            now = [
                r.metrics().get("aidmesh_bus_events_received_total", 0.0) for r in cluster.replicas
            ]
            figures["bus events per replica after resume"] = [
                n - b for n, b in zip(now, received, strict=True)
            ]
        finally:
            stop.set()
            for client in clients:
                await client.stop()
            await rest.aclose()
        return history

    history = asyncio.run(scenario())
    summary = check_against_table(history, cluster.database_url)
    print(
        f"\nD4 Redis SIGSTOP {PAUSE_S:.0f}s: {figures};"
        f" write statuses {dict(history.statuses())}\n{summary}"
    )
    assert not [s for s in history.statuses() if s is None or s >= 500], history.statuses()
    assert summary.writes["ok"] == len(history.writes), history.statuses()
    assert summary.complete, summary
    resumed = figures["bus events per replica after resume"]
    assert isinstance(resumed, list) and all(n >= 20 for n in resumed), figures
