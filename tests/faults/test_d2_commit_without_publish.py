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
from tests.faults.chaos import ChaosRun
from tests.history import percentile
from tests.realtime.live_client import wait_until
from tests.replicas import Cluster, cluster_fixture

RUNS = 50
cluster = cluster_fixture(replicas=2)


@pytest.mark.slow
def test_events_committed_but_never_published_reach_every_client(cluster: Cluster) -> None:
    actor = cluster.actor("manager", "nairobi")
    delays: dict[str, list[float]] = {"poll": [], "gap": []}

    async def commit_without_publish(incident_id: int) -> int:
        _, events = await asyncio.to_thread(
            cluster.executor.run_sync,
            actor,
            raise_request,
            incident_id,
            AidRequestCreate(resource="high-capacity-pump", quantity=1),
        )
        seq: int = events[0].seq
        return seq

    async def scenario() -> ChaosRun:
        async with ChaosRun(cluster, "d2", incidents=1) as run:
            incident_id = next(iter(run.incidents))
            for n in range(RUNS):
                seq = await commit_without_publish(incident_id)
                committed = time.monotonic()
                path = "gap" if n % 2 else "poll"
                if path == "gap":
                    await run.rest.raise_request(run.manager, incident_id, quantity=1)
                arrived = await wait_until(
                    lambda seq=seq: all(c.has(incident_id, seq) for c in run.clients), 10, 0.005
                )
                assert arrived, f"run {n}: seq {seq} did not reach every client\n{cluster.logs()}"
                delays[path].append(time.monotonic() - committed)
            await run.settle(10)
        return run

    summary = asyncio.run(scenario()).check()
    lines = [
        f"{path}: {len(d)} runs, delay p50={percentile(d, 0.5) * 1000:.0f}ms"
        f" max={max(d) * 1000:.0f}ms"
        for path, d in delays.items()
    ]
    print(f"\nD2 commit without publish, {RUNS} runs:\n" + "\n".join(lines) + f"\n{summary}")
    assert summary.complete, summary
    assert summary.duplicates == 0, summary
