"""Two replicas sharing PostgreSQL and Redis: one ordered stream, claims never over-committed."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import httpx
import pytest

from service.commands.admin import mint_token
from service.domain.actors import SYSTEM, Role
from tests.history import History, check, load_truth
from tests.realtime.live_client import (
    API,
    LiveClient,
    Rest,
    caught_up,
    produce,
    setup_incidents,
    wait_until,
)
from tests.replicas import Cluster, cluster_fixture

cluster = cluster_fixture(replicas=2)


def test_clients_on_both_replicas_see_the_same_ordered_event_sequence(cluster: Cluster) -> None:
    a, b = cluster.replicas
    manager = cluster.headers("manager", "nairobi")
    responder = cluster.headers("responder", "thika")

    async def scenario() -> History:
        history = History()
        rest = Rest([a.url, b.url], history)
        incidents = await setup_incidents(rest, manager, 2, "ordered")
        scopes = [f"incident:{i}" for i in incidents]
        clients = [
            LiveClient(
                f"{replica.name}-{n}",
                [replica.ws_url],
                cluster.token("responder", "thika")
                if n % 2
                else cluster.token("observer", "thika"),
                scopes,
                history,
                use_ticket=n % 3 == 0,
                rotate=False,
            ).start()
            for replica in (a, b)
            for n in range(4)
        ]
        try:
            assert await wait_until(lambda: all(c.live.is_set() for c in clients), 15)
            await produce(rest, manager, responder, incidents, 150, workers=4)
            truth = load_truth(cluster.database_url, incidents)
            assert await caught_up(clients, truth.last_seq, 15), cluster.logs()
            await asyncio.sleep(0.3)  # anything extra (a duplicate) would arrive now
        finally:
            for client in clients:
                await client.stop()
            await rest.aclose()
        return history

    history = asyncio.run(scenario())
    incidents = {i for log in history.clients.values() for i, _, _ in log.events}
    truth = load_truth(cluster.database_url, incidents)
    summary = check(history, truth)
    print(f"\ntwo replicas, ordered stream:\n{summary}")
    assert summary.complete, summary
    assert summary.duplicates == 0 and summary.reordered == 0, summary
    assert summary.writes["ok"] == len(history.writes), history.statuses()
    for log in history.clients.values():
        for incident_id in incidents:
            got = [(s, e) for i, s, e in log.events if i == incident_id]
            assert got == truth.ids(incident_id), f"{log.name} incident {incident_id}"


@pytest.mark.slow
def test_200_concurrent_claimers_on_two_replicas_claim_exactly_the_quantity(
    cluster: Cluster,
) -> None:
    a, b = cluster.replicas
    manager = cluster.headers("manager", "nairobi")
    tokens = []
    for n in range(4):
        (_, secret), _ = cluster.executor.run_sync(
            SYSTEM, mint_token, Role.RESPONDER, cluster.city["thika"], f"claimer {n}"
        )
        tokens.append(secret)

    async def scenario() -> dict[str, object]:
        history = History()
        rest = Rest([a.url], history)
        incident_id = await rest.declare(manager, "claim race")
        request = await rest.raise_request(manager, incident_id, quantity=10)
        assert request.object_id
        watchers = [
            LiveClient(
                f"watch-{r.name}",
                [r.ws_url],
                cluster.token("manager", "nairobi"),
                [f"incident:{incident_id}"],
                history,
            ).start()
            for r in (a, b)
        ]
        try:
            assert await wait_until(lambda: all(w.live.is_set() for w in watchers), 15)
            limits = httpx.Limits(max_connections=250)
            async with httpx.AsyncClient(trust_env=False, timeout=60, limits=limits) as http:
                gate = asyncio.Event()

                async def claimer(n: int) -> int:
                    base = (a, b)[n % 2].url
                    headers = {
                        "Authorization": f"Bearer {tokens[n % len(tokens)]}",
                        "Idempotency-Key": f"racer-{n}-{uuid.uuid4().hex}",
                    }
                    await gate.wait()
                    r = await http.post(
                        f"{base}{API}/requests/{request.object_id}/claims",
                        json={"quantity": 1},
                        headers=headers,
                    )
                    return r.status_code

                tasks = [asyncio.ensure_future(claimer(n)) for n in range(200)]
                await asyncio.sleep(0.2)
                started = time.monotonic()
                gate.set()
                statuses = await asyncio.gather(*tasks)
                elapsed = time.monotonic() - started
                r = await http.get(f"{a.url}{API}/requests/{request.object_id}", headers=manager)
                stored = r.json()
                r = await http.get(
                    f"{b.url}{API}/requests/{request.object_id}/claims",
                    params={"limit": 500},
                    headers=manager,
                )
                claims = r.json()["data"]
            truth = load_truth(cluster.database_url, [incident_id])
            assert await caught_up(watchers, truth.last_seq, 10)
        finally:
            for watcher in watchers:
                await watcher.stop()
            await rest.aclose()
        made = [s for s, e in truth.events[incident_id].items() if e[1] == "claim.made"]
        active = sum(c["quantity"] for c in claims if c["status"] == "claimed")
        print(
            f"\n200 claimers over 2 replicas on a request of 10: {dict(Counter(statuses))}"
            f" in {elapsed:.2f}s; claimed_quantity={stored['claimed_quantity']}"
            f" status={stored['status']}; active claims sum={active};"
            f" claim.made events={len(made)}"
        )
        for watcher in watchers:
            assert watcher.log.silent_gaps == 0
            assert len({s for _, s, _ in watcher.log.events}) == len(watcher.log.events)
        return {"statuses": Counter(statuses), "stored": stored, "active": active, "made": made}

    result = asyncio.run(scenario())
    counts = result["statuses"]
    assert isinstance(counts, Counter)
    assert not [s for s in counts if s >= 500], f"5xx answers to claims: {counts}"
    assert counts[201] == 10, counts
    assert counts[409] == 190, counts
    stored = result["stored"]
    assert isinstance(stored, dict)
    assert stored["claimed_quantity"] == 10 and stored["status"] == "claimed", stored
    assert result["active"] == 10
    assert len(result["made"]) == 10  # type: ignore[arg-type]


def test_a_claim_sent_over_the_websocket_of_one_replica_reaches_a_client_of_the_other(
    cluster: Cluster,
) -> None:
    a, b = cluster.replicas
    manager = cluster.headers("manager", "nairobi")

    async def scenario() -> None:
        history = History()
        rest = Rest([a.url], history)
        incident_id = await rest.declare(manager, "claim over websocket")
        request = await rest.raise_request(manager, incident_id, quantity=5)
        scope = [f"incident:{incident_id}"]
        claimer = LiveClient(
            "claimer-on-a", [a.ws_url], cluster.token("responder", "thika"), scope, history
        ).start()
        watcher = LiveClient(
            "watcher-on-b", [b.ws_url], cluster.token("manager", "nairobi"), scope, history
        ).start()
        try:
            assert await wait_until(lambda: claimer.live.is_set() and watcher.live.is_set(), 15)
            started = time.monotonic()
            ack = await claimer.command(
                {
                    "op": "claim",
                    "request_id": request.object_id,
                    "quantity": 2,
                    "idempotency_key": "ws-claim-1",
                }
            )
            assert ack["type"] == "ack" and ack["status"] == 201, ack
            claim_id = ack["result"]["id"]
            truth = load_truth(cluster.database_url, [incident_id])
            seq = next(
                s
                for s, (_, type_, data) in truth.events[incident_id].items()
                if type_ == "claim.made" and data["claim"]["id"] == claim_id
            )
            assert await wait_until(lambda: watcher.has(incident_id, seq), 5)
            took = time.monotonic() - started
            event_id = truth.events[incident_id][seq][0]
            assert (incident_id, seq, event_id) in watcher.log.events

            again = await claimer.command(
                {
                    "op": "claim",
                    "request_id": request.object_id,
                    "quantity": 2,
                    "idempotency_key": "ws-claim-1",
                }
            )
            assert again["type"] == "ack" and again["replayed"] is True, again
            assert again["result"]["id"] == claim_id
            await asyncio.sleep(0.5)
            after = load_truth(cluster.database_url, [incident_id])
            assert after.last_seq[incident_id] == seq, "a replayed claim recorded a new event"
            r = await rest.http.get(f"{b.url}{API}/requests/{request.object_id}", headers=manager)
            assert r.json()["claimed_quantity"] == 2
            print(
                f"\nclaim over the websocket of A seen by a client of B after {took * 1000:.0f}ms"
            )
        finally:
            await claimer.stop()
            await watcher.stop()
            await rest.aclose()

    asyncio.run(scenario())
