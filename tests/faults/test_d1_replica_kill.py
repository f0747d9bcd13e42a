"""D1: a replica killed (kill -9) mid fan-out, a few times, under load.

Its clients reconnect to the other replica with their last seqs and end with the
full, gap-free sequence; every write a replica acknowledged is in the events table.
"""

from __future__ import annotations

import pytest

from tests.faults.chaos import Watchers, replica_kills, run_chaos
from tests.replicas import Cluster, cluster_fixture

KILLS = 3
cluster = cluster_fixture(replicas=2)


@pytest.mark.slow
def test_replicas_killed_mid_stream_lose_no_event_and_no_acknowledged_write(
    cluster: Cluster,
) -> None:
    a, b = cluster.replicas
    outcome = run_chaos(
        cluster,
        "d1",
        replica_kills([a, b], KILLS, every_s=1.5, down_s=0.5),
        writes=500,
        workers=3,
        pause_s=0.01,
        # Ten watchers, five starting on each replica, moving on to the other after a
        # close; every fourth signs in with a ticket.
        watchers=Watchers(per_replica=5, rotate=True, ticket_every=4),
    )
    kills = outcome.targets("kill -9")
    history, summary = outcome.history, outcome.summary
    print(f"\nD1: writes and {KILLS} kills took {outcome.took_s:.1f}s")
    assert a.alive() and b.alive()
    reconnects = sum(log.connects - 1 for log in history.clients.values())
    print(
        f"D1 kill -9 of {kills}: {reconnects} client reconnects;"
        f" write statuses {dict(history.statuses())}\n{summary}"
    )
    assert len(kills) == KILLS
    assert summary.complete, summary
    assert summary.writes["ok"] > 0
