"""Redis down: the pages still connect (their tickets live in the database), replay
works meanwhile, live delivery comes back with Redis, and no REST route answers a
plain-text 500 for a Redis failure (a JSON 503 with Retry-After instead).

Against a private redis-server (never the shared one), paused and killed by its PID.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis.asyncio as aioredis
from fastapi import FastAPI

from service.api import errors
from tests.history import History
from tests.procs import RedisServer
from tests.realtime.live_client import API, Rest, open_ws, ws_ticket
from tests.replicas import Cluster, cluster_fixture

cluster = cluster_fixture(replicas=1, private_redis=True)


async def _until(ws: Any, kind: str, timeout_s: float) -> list[dict[str, Any]]:
    """Messages up to and including the first of type `kind`."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout_s):
        while True:
            message = orjson.loads(await ws.recv())
            seen.append(message)
            if message.get("type") == kind:
                return seen


def test_the_pages_connect_by_ticket_while_redis_is_paused(cluster: Cluster) -> None:
    replica = cluster.replicas[0]
    redis_server = cluster.redis_server
    assert redis_server is not None
    manager = cluster.headers("manager", "nairobi")
    responder = cluster.headers("responder", "thika")

    async def scenario() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        rest = Rest([replica.url], History())
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            incident_id = await rest.declare(manager, "redis down")
            request = await rest.raise_request(manager, incident_id, 10)
            assert request.object_id
            redis_server.pause()
            try:
                began = time.perf_counter()
                ticket = await ws_ticket(http, replica.url, cluster.token("responder", "thika"))
                seen["ticket_s"] = time.perf_counter() - began
                ws = await open_ws(f"{replica.ws_url}?ticket={ticket}")
                seen["welcome"] = orjson.loads(await ws.recv())["type"]
                await ws.send(
                    orjson.dumps(
                        {
                            "op": "subscribe",
                            "scopes": [f"incident:{incident_id}"],
                            "since": {str(incident_id): 0},
                        }
                    ).decode()
                )
                replayed = await _until(ws, "subscribed", 10)
                seen["replayed"] = [m["event"]["seq"] for m in replayed if m["type"] == "event"]
                claim = await rest.claim(responder, request.object_id)
                seen["claim during the outage"] = claim.status
            finally:
                redis_server.resume()
            # Live again: the claim of the outage, then one made now, reach the socket.
            began = time.perf_counter()
            await rest.claim(responder, request.object_id)
            live: list[int] = []
            async with asyncio.timeout(15):
                while 4 not in live:
                    message = orjson.loads(await ws.recv())
                    if message["type"] == "event":
                        live.append(message["event"]["seq"])
            seen["live after"] = live
            seen["live_s"] = round(time.perf_counter() - began, 3)
            await ws.close()
        await rest.aclose()
        return seen

    seen = asyncio.run(scenario())
    print(f"\nwith Redis paused: {seen}")
    assert seen["ticket_s"] < 1.0
    assert seen["welcome"] == "welcome"
    assert seen["replayed"] == [1, 2]
    assert seen["claim during the outage"] == 201
    assert seen["live after"] == [3, 4]


def test_a_redis_failure_on_any_route_is_a_json_503_with_retry_after(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    client = aioredis.Redis.from_url(server.url, socket_timeout=1, socket_connect_timeout=1)
    app = FastAPI()
    errors.install(app)

    @app.get("/uses-redis")
    async def uses_redis() -> dict[str, bool]:
        return {"pong": bool(await client.ping())}

    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://aidmesh") as http:
            answers = [await http.get("/uses-redis")]
            server.pause()
            answers.append(await http.get("/uses-redis"))  # times out
            server.resume()
            server.stop()
            answers.append(await http.get("/uses-redis"))  # refused
        await client.aclose()
        return answers

    try:
        ok, frozen, gone = asyncio.run(scenario())
    finally:
        server.stop()
    assert ok.status_code == 200
    for answer in (frozen, gone):
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["retry-after"] == "1"
        assert "retry" in answer.json()["detail"]


def test_a_ticket_does_not_touch_redis(cluster: Cluster) -> None:
    """Redis gone altogether (not merely paused): tickets still come, as JSON."""
    redis_server = cluster.redis_server
    assert redis_server is not None
    replica = cluster.replicas[0]
    redis_server.stop()
    try:
        r = httpx.post(
            f"{replica.url}{API}/ws-ticket",
            headers=cluster.headers("observer", "thika"),
            timeout=10,
            trust_env=False,
        )
    finally:
        redis_server.start()
    assert r.status_code == 200, r.text
    assert r.json()["ticket"].startswith("wst_")
