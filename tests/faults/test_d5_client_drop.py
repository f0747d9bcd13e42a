"""D5: a client connection dropped mid-stream resumes with its last seqs: replay, then live,
no gap and no duplicate."""

from __future__ import annotations

import asyncio

import pytest

from service.commands.aid_requests import raise_request
from service.models import AidRequestCreate
from tests.faults.chaos import ChaosRun, Watchers, client_drops
from tests.history import History, check, load_truth
from tests.realtime.live_client import LiveClient, Rest, wait_until
from tests.replicas import Cluster, cluster_fixture

cluster = cluster_fixture(replicas=1)

MIN_DROPS = 20
MAX_DROPS = 40
MORE_ROUNDS = 10


@pytest.mark.slow
def test_clients_dropped_abruptly_mid_stream_resume_without_gap_or_duplicate(
    cluster: Cluster,
) -> None:
    replica = cluster.replicas[0]

    async def scenario() -> ChaosRun:
        watchers = Watchers(per_replica=6, rotate=True)
        async with ChaosRun(cluster, "d5", watchers=watchers, replicas=[replica]) as run:
            done = asyncio.Event()
            drops = client_drops(run.clients, MAX_DROPS, seed=5, gap_s=(0.05, 0.2))
            chaos = asyncio.ensure_future(run.apply(drops, until=done))
            await run.writes(400)
            # How many drops fit in 400 writes depends on the machine's speed: writes go
            # on, a bounded number of rounds, until enough drops happened mid-stream.
            for _ in range(MORE_ROUNDS):
                if len(run.applied_at("drop")) >= MIN_DROPS:
                    break
                await run.writes(100)
            done.set()
            await chaos
            await run.settle(20)
        return run

    run = asyncio.run(scenario())
    summary = run.check()
    drops = len(run.applied_at("drop"))
    print(f"\nD5 abrupt client drops: {drops} drops\n{summary}")
    assert drops >= MIN_DROPS
    assert summary.complete, summary
    assert summary.duplicates == 0, summary
    assert summary.reordered == 0, summary
    assert summary.resets == 0, summary


@pytest.mark.slow
def test_resume_with_seqs_the_replica_has_not_dispatched_yet_sends_no_duplicates(
    cluster: Cluster,
) -> None:
    """A client may know seqs the replica it reconnects to has not dispatched yet: it read them
    in a replay from the table (or from another replica) while this replica was still behind.
    Resuming with those seqs, it must not be sent them again when the replica catches up."""
    # A replica whose gap poll is slow, so that it stays behind for 8 to 16 s: a fill needs
    # two polls in a row to find it behind, and the two resumes below must happen before.
    slow = cluster.add_replica("slow-poll", AIDMESH_GAP_POLL_INTERVAL_S="8")

    def filled() -> float:
        return slow.metrics().get("aidmesh_gap_filled_events_total", 0.0)

    manager = cluster.headers("manager", "nairobi")
    actor = cluster.actor("manager", "nairobi")

    async def scenario() -> tuple[History, int]:
        history = History()
        rest = Rest([slow.url], history)
        incident_id = await rest.declare(manager, "d5 resume ahead")
        scope = [f"incident:{incident_id}"]
        client = LiveClient(
            "ahead", [slow.ws_url], cluster.token("observer", "thika"), scope, history
        )
        client.start()
        try:
            # Each drop below waits for the session before it to finish subscribing: a
            # drop between its replayed events and its "subscribed" frame would make
            # that resume, not the next one, the one that is cut short.
            assert await wait_until(
                lambda: client.has(incident_id, 1) and client.log.subscribed >= 1, 10
            )
            # Committed, never published: the replica learns of them only from its poll.
            for _ in range(3):
                cluster.executor.run_sync(
                    actor,
                    raise_request,
                    incident_id,
                    AidRequestCreate(resource="high-capacity-pump", quantity=2),
                )
            before = await asyncio.to_thread(filled)
            client.drop()  # resumes with {incident: 1}: replayed 2..4 from the table
            assert await wait_until(
                lambda: client.has(incident_id, 4) and client.log.subscribed >= 2, 5
            )
            client.drop()  # resumes with {incident: 4}: nothing to replay
            assert await wait_until(lambda: client.log.subscribed >= 3, 5)
            assert await asyncio.to_thread(filled) == before, "the replica caught up too early"
            # The replica's poll now fills 2..4 and dispatches them to its connections.
            assert await wait_until(lambda: filled() >= before + 3, 25, 0.2)
            await asyncio.sleep(0.5)
        finally:
            await client.stop()
            await rest.aclose()
        return history, incident_id

    history, incident_id = asyncio.run(scenario())
    summary = check(history, load_truth(cluster.database_url, [incident_id]))
    seqs = [s for _, s, _ in history.clients["ahead"].events]
    print(f"\nresume ahead of the replica: received seqs {seqs}\n{summary}")
    assert summary.complete, summary
    assert summary.duplicates == 0, f"seqs received again after resuming past them: {seqs}"
