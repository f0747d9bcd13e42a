"""D12: a rolling restart, each of two replicas stopped with SIGTERM and started again, in turn,
while claims (REST and websocket) and events flow.

A replica that gets SIGTERM turns /readyz not-ready, closes its websockets with 1012,
finishes what is in flight and exits within its grace. Its clients reconnect to the
other replica at once and resume from their last seqs; nothing is lost, every
acknowledged write is in the events table, no claim is answered 5xx except the
documented JSON 503, and nothing hangs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx
import pytest

from tests.faults.mixed_load import MixedLoad, claimers, watchers
from tests.history import History, check_against_table, load_truth
from tests.realtime.live_client import Rest, caught_up, setup_incidents, wait_until
from tests.replicas import Cluster, Replica, cluster_fixture

GRACE_S = 5.0
# Serving, not ready, this long after SIGTERM before the port closes: long enough for
# the test to see /readyz say so.
DELAY_S = 0.5
cluster = cluster_fixture(
    replicas=2, AIDMESH_SHUTDOWN_GRACE_S=str(GRACE_S), AIDMESH_SHUTDOWN_DELAY_S=str(DELAY_S)
)


async def _restart(replica: Replica, drains: dict[str, float], ready: dict[str, int]) -> None:
    """SIGTERM, wait for the exit (the drain), start it again."""
    assert replica.proc is not None
    async with httpx.AsyncClient(trust_env=False, timeout=2.0) as http:
        # A connection opened before the signal: /readyz over it says "draining".
        assert (await http.get(f"{replica.url}/readyz")).status_code == 200
        began = time.monotonic()
        os.kill(replica.pid, signal.SIGTERM)
        # uvicorn looks at its exit flag every 0.1 s; then /readyz answers 503 "draining".
        while time.monotonic() - began < DELAY_S + 1:
            try:
                r = await http.get(f"{replica.url}/readyz")
            except httpx.HTTPError:
                ready[replica.name] = -1  # closed before it was seen: wrong, with a delay
                break
            if r.status_code != 200:
                ready[replica.name] = r.status_code
                assert r.json()["status"] == "draining", r.text
                break
            await asyncio.sleep(0.02)
    code = await asyncio.to_thread(replica.proc.wait, GRACE_S + 10)
    drains[replica.name] = round(time.monotonic() - began, 2)
    # uvicorn re-raises the signal once its graceful shutdown is done: exit by SIGTERM,
    # after the lifespan closed everything (its last line is the drain's).
    assert code in (0, -signal.SIGTERM), (code, replica.log_tail())
    assert replica.log_tail(5).count("drained in") == 1, replica.log_tail()
    await asyncio.to_thread(replica.start)


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_d12_rolling_restart_loses_nothing_and_every_client_resumes(cluster: Cluster) -> None:
    manager = cluster.headers("manager", "nairobi")
    a, b = cluster.replicas
    drains: dict[str, float] = {}
    ready: dict[str, int] = {}

    async def scenario() -> tuple[History, MixedLoad, list[str]]:
        history = History()
        rest = Rest([r.url for r in cluster.replicas], history, timeout_s=8.0)
        incidents = await setup_incidents(rest, manager, 2, "d12")
        claiming = claimers(cluster, history, incidents)
        clients = [*watchers(cluster, history, incidents, rotate=True), *claiming]
        load = MixedLoad(cluster, history, incidents, claiming, rest)
        try:
            assert await wait_until(lambda: all(c.live.is_set() for c in clients), 15)
            load.start()
            await asyncio.sleep(2.0)
            for replica in (a, b):
                await _restart(replica, drains, ready)
                await asyncio.sleep(1.5)
            await asyncio.sleep(1.0)
            await load.stop()
            truth = load_truth(cluster.database_url, incidents)
            assert await caught_up(clients, truth.last_seq, 20), cluster.logs()
            await asyncio.sleep(0.5)
            names = [c.name for c in clients]
        finally:
            load._stop.set()
            for client in clients:
                await client.stop()
            await rest.aclose()
        return history, load, names

    history, load, names = asyncio.run(scenario())
    summary = check_against_table(history, cluster.database_url)
    restarted = {
        name: sum(1 for code, _ in history.clients[name].closes if code == 1012) for name in names
    }
    writes = {op: sum(1 for w in history.writes if w.op == op) for op in ("claim", "ws-claim")}
    print(
        f"\nD12 rolling restart (SIGTERM, delay {DELAY_S}s, grace {GRACE_S:.0f}s):"
        f" SIGTERM to exit {drains} s;"
        f" /readyz after SIGTERM {ready}; 1012 closes per client {restarted};"
        f" writes {writes}, statuses {dict(history.statuses())};"
        f" ws claims sent again after a close {load.ws_resent}; tickets {dict(load.tickets)};"
        f" hangs {load.hangs()}\n{summary}"
    )
    assert all(d < GRACE_S + 6 for d in drains.values()), drains
    assert ready == {a.name: 503, b.name: 503}, ready
    # Every client was on a restarted replica at least once, was told 1012, and resumed.
    assert all(n >= 1 for n in restarted.values()), restarted
    assert all(history.clients[name].connects >= 2 for name in names)
    assert load.hangs() == 0
    assert not load.unexpected_refusals(), load.unexpected_refusals()[:5]
    assert not [s for s in history.statuses() if s is not None and s >= 500 and s != 503]
    assert summary.complete, summary
    assert writes["claim"] > 50 and writes["ws-claim"] > 50, writes
