"""D1: a replica killed (kill -9) mid fan-out, a few times, under load.

Its clients reconnect to the other replica with their last seqs and end with the
full, gap-free sequence; every write a replica acknowledged is in the events table.
"""

from __future__ import annotations

import asyncio
import signal
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

KILLS = 3
cluster = cluster_fixture(replicas=2)


@pytest.mark.slow
def test_replicas_killed_mid_stream_lose_no_event_and_no_acknowledged_write(
    cluster: Cluster,
) -> None:
    a, b = cluster.replicas
    manager = cluster.headers("manager", "nairobi")
    responder = cluster.headers("responder", "thika")
    kills: list[str] = []

    async def chaos() -> None:
        for n in range(KILLS):
            await asyncio.sleep(1.5)
            victim = (a, b)[n % 2]
            victim.kill(signal.SIGKILL)
            kills.append(victim.name)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(victim.start)

    async def scenario() -> History:
        history = History()
        rest = Rest([a.url, b.url], history)
        incidents = await setup_incidents(rest, manager, 2, "d1")
        scopes = [f"incident:{i}" for i in incidents]
        clients = [
            LiveClient(
                f"d1-{n}",
                [a.ws_url, b.ws_url] if n % 2 else [b.ws_url, a.ws_url],
                cluster.token("observer", "thika"),
                scopes,
                history,
                use_ticket=n % 4 == 0,
            ).start()
            for n in range(10)
        ]
        try:
            assert await wait_until(lambda: all(c.live.is_set() for c in clients), 15)
            started = time.monotonic()
            await asyncio.gather(
                chaos(), produce(rest, manager, responder, incidents, 500, workers=3, pause_s=0.01)
            )
            print(f"\nD1: writes and {KILLS} kills took {time.monotonic() - started:.1f}s")
            assert a.alive() and b.alive()
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
    reconnects = sum(log.connects - 1 for log in history.clients.values())
    print(
        f"D1 kill -9 of {kills}: {reconnects} client reconnects;"
        f" write statuses {dict(history.statuses())}\n{summary}"
    )
    assert len(kills) == KILLS
    assert summary.complete, summary
    assert summary.writes["ok"] > 0
