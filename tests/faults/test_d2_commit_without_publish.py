"""D2: an event committed but never published (a crash between commit and publish) still
reaches every client, through the replicas' gap detection and poll.

The service has no failpoint that exits right after COMMIT, so the crash is simulated
faithfully: the command runs through an Executor whose bus is an in-process bus with
no listener, against the replicas' database. The transaction commits exactly as a
replica's would, and nothing is published. Half of the runs are followed at once by a
published write (the replicas notice the seq gap), half are not (only the poll can
find them).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from service.commands.aid_requests import raise_request
from service.models import AidRequestCreate
from tests.history import History, check_against_table, load_truth, percentile
from tests.realtime.live_client import LiveClient, Rest, caught_up, setup_incidents, wait_until
from tests.replicas import Cluster, cluster_fixture

RUNS = 50
cluster = cluster_fixture(replicas=2)


@pytest.mark.slow
def test_events_committed_but_never_published_reach_every_client(cluster: Cluster) -> None:
    a, b = cluster.replicas
    manager = cluster.headers("manager", "nairobi")
    actor = cluster.actor("manager", "nairobi")
    delays: dict[str, list[float]] = {"poll": [], "gap": []}

    async def scenario() -> History:
        history = History()
        rest = Rest([a.url, b.url], history)
        incidents = await setup_incidents(rest, manager, 1, "d2")
        incident_id = next(iter(incidents))
        clients = [
            LiveClient(
                f"d2-{r.name}-{n}",
                [r.ws_url],
                cluster.token("observer", "thika"),
                [f"incident:{incident_id}"],
                history,
                rotate=False,
            ).start()
            for r in (a, b)
            for n in range(3)
        ]
        try:
            assert await wait_until(lambda: all(c.live.is_set() for c in clients), 15)
            for run in range(RUNS):
                _, events = await asyncio.to_thread(
                    cluster.executor.run_sync,
                    actor,
                    raise_request,
                    incident_id,
                    AidRequestCreate(resource="high-capacity-pump", quantity=1),
                )
                seq = events[0].seq
                committed = time.monotonic()
                path = "gap" if run % 2 else "poll"
                if path == "gap":
                    await rest.raise_request(manager, incident_id, quantity=1)
                arrived = await wait_until(
                    lambda seq=seq: all(c.has(incident_id, seq) for c in clients), 10, 0.005
                )
                assert arrived, f"run {run}: seq {seq} did not reach every client\n{cluster.logs()}"
                delays[path].append(time.monotonic() - committed)
            truth = load_truth(cluster.database_url, [incident_id])
            assert await caught_up(clients, truth.last_seq, 10)
            await asyncio.sleep(0.5)
        finally:
            for client in clients:
                await client.stop()
            await rest.aclose()
        return history

    history = asyncio.run(scenario())
    summary = check_against_table(history, cluster.database_url)
    lines = [
        f"{path}: {len(d)} runs, delay p50={percentile(d, 0.5) * 1000:.0f}ms"
        f" max={max(d) * 1000:.0f}ms"
        for path, d in delays.items()
    ]
    print(f"\nD2 commit without publish, {RUNS} runs:\n" + "\n".join(lines) + f"\n{summary}")
    assert summary.complete, summary
    assert summary.duplicates == 0, summary
