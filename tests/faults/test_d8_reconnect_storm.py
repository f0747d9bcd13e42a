"""D8: every client of two replicas loses its connection at once and reconnects at once,
each with its last seqs, while events keep flowing: all resume, nothing lost or repeated."""

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

CLIENTS = 150
cluster = cluster_fixture(replicas=2)


@pytest.mark.slow
def test_a_reconnect_storm_of_150_clients_all_resume_with_nothing_lost(cluster: Cluster) -> None:
    a, b = cluster.replicas
    manager = cluster.headers("manager", "nairobi")
    responder = cluster.headers("responder", "thika")
    figures: dict[str, object] = {}

    async def scenario() -> History:
        history = History()
        rest = Rest([a.url, b.url], history)
        incidents = await setup_incidents(rest, manager, 2, "d8")
        scopes = [f"incident:{i}" for i in incidents]
        token = cluster.token("observer", "thika")
        clients = [
            LiveClient(
                f"d8-{n}",
                [(a, b)[n % 2].ws_url],
                token,
                scopes,
                history,
                rotate=False,
                reconnect_delay_s=0.0,
            )
            for n in range(CLIENTS)
        ]
        try:
            for client in clients:
                client.start()
            assert await wait_until(lambda: all(c.live.is_set() for c in clients), 30)
            load = asyncio.ensure_future(
                produce(rest, manager, responder, incidents, 240, workers=2, pause_s=0.02)
            )
            await asyncio.sleep(1.0)
            before = [c.log.subscribed for c in clients]
            storm = time.monotonic()
            for client in clients:
                client.drop()
            resumed = await wait_until(
                lambda: all(c.log.subscribed > n for c, n in zip(clients, before, strict=True)), 30
            )
            figures["storm resumed in s"] = round(time.monotonic() - storm, 2)
            figures["resumed"] = sum(
                1 for c, n in zip(clients, before, strict=True) if c.log.subscribed > n
            )
            assert resumed, figures
            await load
            truth = load_truth(cluster.database_url, incidents)
            assert await caught_up(clients, truth.last_seq, 30), cluster.logs()
            await asyncio.sleep(0.5)
            figures["failed reconnect attempts"] = sum(len(c.errors) for c in clients)
        finally:
            await asyncio.gather(*(client.stop() for client in clients))
            await rest.aclose()
        return history

    history = asyncio.run(scenario())
    summary = check_against_table(history, cluster.database_url)
    share = figures.get("resumed", 0) / CLIENTS  # type: ignore[operator]
    print(f"\nD8 reconnect storm of {CLIENTS} clients: {share:.0%} resumed, {figures}\n{summary}")
    assert share == 1.0
    assert summary.complete, summary
    assert summary.duplicates == 0, summary
