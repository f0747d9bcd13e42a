"""Two deployments that share one Redis server, each with its own database number, are two
separate worlds: a client of one never receives an event of the other."""

from __future__ import annotations

import asyncio

import pytest

from tests.history import History, check, load_truth
from tests.procs import RedisServer
from tests.realtime.live_client import LiveClient, Rest, wait_until
from tests.replicas import cluster


@pytest.mark.slow
def test_deployments_on_two_databases_of_one_redis_do_not_see_each_others_events(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    tmp = tmp_path_factory.mktemp("isolation")
    redis_server = RedisServer(tmp / "redis")
    redis_server.start()
    try:
        with (
            cluster(tmp / "x", replicas=1, redis_url=f"{redis_server.url[:-2]}/0") as x,
            cluster(tmp / "y", replicas=1, redis_url=f"{redis_server.url[:-2]}/1") as y,
        ):

            async def scenario() -> tuple[History, int]:
                history = History()
                rest_x = Rest([x.replicas[0].url], History())
                rest_y = Rest([y.replicas[0].url], History())
                manager_x = x.headers("manager", "nairobi")
                manager_y = y.headers("manager", "nairobi")
                incident_y = await rest_y.declare(manager_y, "deployment y")
                client = LiveClient(
                    "client-of-y",
                    [y.replicas[0].ws_url],
                    y.token("observer", "thika"),
                    [f"incident:{incident_y}"],
                    history,
                ).start()
                try:
                    assert await wait_until(lambda: client.has(incident_y, 1), 10)
                    # Deployment x happens to number its first incident the same way.
                    incident_x = await rest_x.declare(manager_x, "deployment x")
                    for _ in range(3):
                        await rest_x.raise_request(manager_x, incident_x, quantity=1)
                    await asyncio.sleep(1.0)
                    for _ in range(2):
                        await rest_y.raise_request(manager_y, incident_y, quantity=1)
                    last = load_truth(y.database_url, [incident_y]).last_seq[incident_y]
                    await wait_until(lambda: client.has(incident_y, last), 5)
                    await asyncio.sleep(1.0)
                finally:
                    await client.stop()
                    await rest_x.aclose()
                    await rest_y.aclose()
                return history, incident_y

            history, incident_y = asyncio.run(scenario())
            summary = check(history, load_truth(y.database_url, [incident_y]))
            print(f"\nclient of deployment y, while x shares the Redis server:\n{summary}")
            assert summary.mismatched == 0 and summary.phantoms == 0, summary
            assert summary.complete, summary
    finally:
        redis_server.stop()
