"""D3 and D4: Redis restarted without persistence, and Redis frozen, while writes go on.

Both run against a private redis-server (never the shared one), killed, paused and
restarted by its PID. Redis is the fast path; the events table is the record, so
every client must end with every event and REST writes must not fail.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.faults.chaos import ChaosRun, Watchers, redis_restarts, redis_signal, run_chaos
from tests.history import History, live_pause_s, load_truth
from tests.realtime.live_client import caught_up
from tests.replicas import Cluster, cluster_fixture

cluster = cluster_fixture(replicas=2, private_redis=True)

RESTARTS = 5
# RELIABILITY's D4 freezes Redis for 30 s; 5 s exercises the same paths (publish
# timeouts, a frozen subscriber, delivery from the poll) and keeps CI time down.
PAUSE_S = 5.0
# While Redis is frozen the replicas' gap poll (every 0.2 s here) delivers: under a
# steady load no watcher waits longer than this for its next event, and no event that
# arrives then took longer than this from its commit. Both were about 0.3 s on a quiet
# two-core machine; the rest is room for a loaded one.
FROZEN_WAIT_MAX_S = 2.0
FROZEN_DELAY_MAX_S = 2.0


def _resubscribes(cluster: Cluster) -> dict[str, int]:
    return {r.name: r.log_text().count("event bus resubscribed") for r in cluster.replicas}


@pytest.mark.slow
def test_d3_redis_restarts_under_load_lose_nothing(cluster: Cluster) -> None:
    redis_server = cluster.redis_server
    assert redis_server is not None
    before = _resubscribes(cluster)
    outcome = run_chaos(
        cluster,
        "d3",
        redis_restarts(redis_server, RESTARTS, every_s=1.0),
        writes=450,
        workers=2,
        pause_s=0.02,
    )
    history, summary = outcome.history, outcome.summary
    print(f"\nD3: writes and {RESTARTS} Redis restarts took {outcome.took_s:.1f}s")
    after = _resubscribes(cluster)
    noticed = {name: after[name] - before[name] for name in after}
    print(
        f"D3 Redis kill -9 and restart x{RESTARTS}: write statuses {dict(history.statuses())};"
        f" bus resubscriptions noticed per replica {noticed}\n{summary}"
    )
    assert summary.complete, summary
    assert not [s for s in history.statuses() if s is None or s >= 500], history.statuses()


def _while_frozen(history: History, start: float, end: float) -> dict[str, object]:
    """How the watchers fared between `start` and `end`: the fewest events one received,
    the longest any waited for its next event, and the slowest delivery of an event."""
    received, delays = [], []
    for log in history.clients.values():
        # Every event carries its delay (the watchers record latency), so the two lists
        # run side by side.
        within = [
            d for t, d in zip(log.arrivals, log.latencies_s, strict=True) if start <= t <= end
        ]
        received.append(len(within))
        delays.extend(within)
    longest_wait, _ = live_pause_s(history, start, end)
    return {
        "fewest events per client while frozen": min(received),
        "longest wait for an event while frozen s": round(longest_wait, 2),
        "slowest delivery while frozen s": round(max(delays, default=float("inf")), 2),
    }


@pytest.mark.slow
def test_d4_redis_frozen_writes_keep_succeeding_and_delivery_catches_up(cluster: Cluster) -> None:
    redis_server = cluster.redis_server
    assert redis_server is not None
    figures: dict[str, object] = {}

    async def scenario() -> ChaosRun:
        async with ChaosRun(cluster, "d4", watchers=Watchers(record_latency=True)) as run:
            history = run.history
            run.load(batch=10, workers=2, pause_s=0.02)
            await run.apply([redis_signal(redis_server, signal.SIGSTOP, after_s=1.5)])
            writes_before = len(history.writes)
            try:
                await asyncio.sleep(PAUSE_S)
                # While Redis is frozen, clients still get events, from the poll.
                truth = load_truth(cluster.database_url, run.incidents)
                figures["delivered while frozen"] = await caught_up(run.clients, truth.last_seq, 5)
                figures["writes while frozen"] = len(history.writes) - writes_before
            finally:
                await run.apply([redis_signal(redis_server, signal.SIGCONT)])
            (paused_at,), (resumed_at,) = run.applied_at("SIGSTOP"), run.applied_at("SIGCONT")
            frozen = history.writes[writes_before:]
            figures["slowest write while frozen s"] = round(max(w.took_s for w in frozen), 2)
            figures["frozen for s"] = round(resumed_at - paused_at, 1)
            figures.update(_while_frozen(history, paused_at, resumed_at))
            await asyncio.sleep(3.0)
            await run.stop_load()

            # Live delivery over Redis resumed: each replica's bus receives new events.
            received = [
                r.metrics().get("aidmesh_bus_events_received_total", 0.0) for r in cluster.replicas
            ]
            await run.writes(20, workers=1)
            await run.settle(15)
            now = [
                r.metrics().get("aidmesh_bus_events_received_total", 0.0) for r in cluster.replicas
            ]
            figures["bus events per replica after resume"] = [
                n - b for n, b in zip(now, received, strict=True)
            ]
        return run

    run = asyncio.run(scenario())
    history, summary = run.history, run.check()
    print(
        f"\nD4 Redis SIGSTOP {PAUSE_S:.0f}s: {figures};"
        f" write statuses {dict(history.statuses())}\n{summary}"
    )
    assert not [s for s in history.statuses() if s is None or s >= 500], history.statuses()
    assert summary.writes["ok"] == len(history.writes), history.statuses()
    assert summary.complete, summary
    # While frozen: every watcher kept receiving, within the bounds, and had everything
    # committed by the end of the freeze before Redis came back.
    assert figures["delivered while frozen"] is True, figures
    fewest = figures["fewest events per client while frozen"]
    assert isinstance(fewest, int) and fewest > 0, figures
    longest_wait = figures["longest wait for an event while frozen s"]
    assert isinstance(longest_wait, float) and longest_wait <= FROZEN_WAIT_MAX_S, figures
    slowest = figures["slowest delivery while frozen s"]
    assert isinstance(slowest, float) and slowest <= FROZEN_DELAY_MAX_S, figures
    resumed = figures["bus events per replica after resume"]
    assert isinstance(resumed, list) and all(n >= 20 for n in resumed), figures
