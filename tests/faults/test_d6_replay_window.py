"""D6: a client offline past the replay window gets a `reset` and snapshot, never a gap."""

from __future__ import annotations

import asyncio

from tests.history import History, check, load_truth
from tests.realtime.live_client import LiveClient, Rest, wait_until
from tests.replicas import Cluster, cluster_fixture

WINDOW = 5
cluster = cluster_fixture(replicas=1, AIDMESH_REPLAY_WINDOW=str(WINDOW))


def test_reconnecting_past_the_replay_window_always_resets_and_within_it_replays(
    cluster: Cluster,
) -> None:
    replica = cluster.replicas[0]
    manager = cluster.headers("manager", "nairobi")
    rounds: list[tuple[int, bool, int]] = []  # events missed, got a reset, events replayed

    async def scenario() -> tuple[History, int]:
        history = History()
        rest = Rest([replica.url], history)
        incident_id = await rest.declare(manager, "d6")
        client = LiveClient(
            "d6",
            [replica.ws_url],
            cluster.token("observer", "thika"),
            [f"incident:{incident_id}"],
            history,
        ).start()
        try:
            assert await wait_until(lambda: client.has(incident_id, 1), 10)
            for n in range(12):
                missed = WINDOW + 1 + n if n % 2 == 0 else WINDOW - n % 4
                client.go_offline()
                assert await wait_until(lambda: not client.live.is_set(), 5)
                for _ in range(missed):
                    write = await rest.raise_request(manager, incident_id, quantity=1)
                    assert write.outcome == "ok", write
                resets, subscribed = len(client.reset_messages), client.log.subscribed
                events = len(client.log.events)
                client.go_online()
                assert await wait_until(lambda n=subscribed: client.log.subscribed > n, 10)
                got_reset = len(client.reset_messages) > resets
                rounds.append((missed, got_reset, len(client.log.events) - events))
                if got_reset:
                    reset = client.reset_messages[-1]
                    truth = load_truth(cluster.database_url, [incident_id])
                    assert reset["last_seq"] == truth.last_seq[incident_id]
                    assert reset["snapshot"]["id"] == incident_id
                    assert reset["snapshot"]["last_seq"] == reset["last_seq"]
                # Live again: the next event follows the snapshot or the replay directly.
                await rest.raise_request(manager, incident_id, quantity=1)
                last = load_truth(cluster.database_url, [incident_id]).last_seq[incident_id]
                assert await wait_until(lambda last=last: client.has(incident_id, last), 10)
        finally:
            await client.stop()
            await rest.aclose()
        return history, incident_id

    history, incident_id = asyncio.run(scenario())
    summary = check(history, load_truth(cluster.database_url, [incident_id]))
    past = [r for r in rounds if r[0] > WINDOW]
    within = [r for r in rounds if r[0] <= WINDOW]
    reset_share = sum(1 for r in past if r[1]) / len(past)
    print(
        f"\nD6 replay window {WINDOW}: {len(past)} reconnects past it,"
        f" {reset_share:.0%} reset; {len(within)} within it,"
        f" {sum(1 for r in within if r[1])} reset\nrounds (missed, reset, replayed): {rounds}"
        f"\n{summary}"
    )
    assert reset_share == 1.0, rounds
    for missed, got_reset, replayed in within:
        assert not got_reset and replayed == missed, rounds
    assert summary.complete, summary
    assert summary.duplicates == 0, summary
