"""The websocket protocol at its edges: bad frames, foreign scopes, wrong roles, origins, tickets.

Each refusal must be an error frame (or a close, or a refused handshake) and
leave the replica serving: a new connection and the REST API still work.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.history import History
from tests.realtime.live_client import API, Rest, open_ws, refused_status, ws_ticket
from tests.replicas import Cluster, cluster_fixture

cluster = cluster_fixture(replicas=1)


@pytest.fixture(scope="module")
def incident(cluster: Cluster) -> tuple[int, int]:
    """A Nairobi incident with one request (aimed at Thika, ring 0): (incident id, request id)."""

    async def make() -> tuple[int, int]:
        rest = Rest([cluster.replicas[0].url], History())
        try:
            incident_id = await rest.declare(cluster.headers("manager", "nairobi"), "edges")
            write = await rest.raise_request(cluster.headers("manager", "nairobi"), incident_id, 3)
            assert write.object_id
            return incident_id, write.object_id
        finally:
            await rest.aclose()

    return asyncio.run(make())


async def _recv(ws: ClientConnection, timeout_s: float = 5.0) -> dict[str, Any]:
    """The next message that is not an event or a heartbeat."""
    while True:
        message: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), timeout_s))
        if message.get("type") not in ("event", "heartbeat"):
            return message


async def _authed(url: str, token: str, **options: Any) -> ClientConnection:
    ws = await open_ws(url, **options)
    await ws.send(orjson.dumps({"op": "auth", "token": token}).decode())
    welcome = await _recv(ws)
    assert welcome["type"] == "welcome", welcome
    return ws


async def _still_serving(cluster: Cluster, incident_id: int) -> None:
    replica = cluster.replicas[0]
    ws = await _authed(replica.ws_url, cluster.token("responder", "thika"))
    try:
        await ws.send('{"op": "ping", "ref": 7}')
        assert await _recv(ws) == {"type": "pong", "ref": 7}
    finally:
        await ws.close()
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        assert (await http.get(f"{replica.url}/healthz")).status_code == 200
        r = await http.get(
            f"{replica.url}{API}/incidents/{incident_id}",
            headers=cluster.headers("observer", "thika"),
        )
        assert r.status_code == 200, r.text


def test_bad_frames_get_error_frames_and_the_replica_keeps_serving(
    cluster: Cluster, incident: tuple[int, int]
) -> None:
    incident_id, request_id = incident
    url = cluster.replicas[0].ws_url

    async def scenario() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        ws = await _authed(url, cluster.token("responder", "thika"))
        try:
            await ws.send("this is not JSON {")
            seen["not json"] = await _recv(ws)
            await ws.send('{"op": "dance", "ref": "d"}')
            seen["unknown op"] = await _recv(ws)
            await ws.send("[1, 2, 3]")
            seen["not an object"] = await _recv(ws)
            await ws.send('{"op": "subscribe", "scopes": ["incident:abc"]}')
            seen["bad scope"] = await _recv(ws)
            await ws.send(
                '{"op": "claim", "request_id": "5", "quantity": 1, "idempotency_key": "k"}'
            )
            seen["bad request id"] = await _recv(ws)
            # The same connection still answers.
            await ws.send('{"op": "ping"}')
            seen["ping"] = await _recv(ws)
        finally:
            await ws.close()

        # Munich sees the incident (the alliance network) but the request is not aimed at it.
        ws = await _authed(url, cluster.token("responder", "munich"))
        try:
            claim = {"op": "claim", "request_id": request_id, "quantity": 1}
            await ws.send(orjson.dumps({**claim, "idempotency_key": "munich-1"}).decode())
            seen["claim not aimed at the city"] = await _recv(ws)
        finally:
            await ws.close()

        ws = await _authed(url, cluster.token("responder", "thika"))
        try:
            await ws.send("x" * (64 * 1024 + 1))
            with pytest.raises(ConnectionClosed) as closed:
                await _recv(ws)
            assert closed.value.rcvd is not None, "closed without a close frame"
            seen["oversized"] = closed.value.rcvd.code
        finally:
            await ws.close()

        await _still_serving(cluster, incident_id)
        return seen

    seen = asyncio.run(scenario())
    print(
        "\nbad frames:",
        {k: v.get("status", v) if isinstance(v, dict) else v for k, v in seen.items()},
    )
    for key in ("not json", "unknown op", "not an object", "bad scope"):
        assert seen[key]["type"] == "error" and seen[key]["status"] == 400, (key, seen[key])
    assert seen["unknown op"]["ref"] == "d"
    assert seen["bad request id"]["type"] == "error" and seen["bad request id"]["status"] == 422
    assert seen["ping"] == {"type": "pong"}
    refused = seen["claim not aimed at the city"]
    assert refused["type"] == "error" and refused["status"] == 403, refused
    assert seen["oversized"] == 1009


def test_a_responder_cannot_subscribe_to_another_citys_inbox(
    cluster: Cluster, incident: tuple[int, int]
) -> None:
    url = cluster.replicas[0].ws_url

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        ws = await _authed(url, cluster.token("responder", "thika"))
        try:
            await ws.send(
                orjson.dumps(
                    {"op": "subscribe", "scopes": [f"city:{cluster.city['nairobi']}"]}
                ).decode()
            )
            foreign = await _recv(ws)
            await ws.send(
                orjson.dumps(
                    {"op": "subscribe", "scopes": [f"city:{cluster.city['thika']}"]}
                ).decode()
            )
            own = await _recv(ws)
        finally:
            await ws.close()
        return foreign, own

    foreign, own = asyncio.run(scenario())
    assert foreign["type"] == "error" and foreign["status"] == 403, foreign
    assert own == {"type": "subscribed", "scopes": [f"city:{cluster.city['thika']}"]}


def test_an_observers_claim_is_refused_with_403(
    cluster: Cluster, incident: tuple[int, int]
) -> None:
    _, request_id = incident
    url = cluster.replicas[0].ws_url

    async def scenario() -> dict[str, Any]:
        ws = await _authed(url, cluster.token("observer", "thika"))
        try:
            await ws.send(
                orjson.dumps(
                    {"op": "claim", "request_id": request_id, "quantity": 1, "idempotency_key": "o"}
                ).decode()
            )
            return await _recv(ws)
        finally:
            await ws.close()

    reply = asyncio.run(scenario())
    assert reply["type"] == "error" and reply["status"] == 403, reply
    r = httpx.get(
        f"{cluster.replicas[0].url}{API}/requests/{request_id}",
        headers=cluster.headers("observer", "thika"),
        trust_env=False,
    )
    assert r.json()["claimed_quantity"] == 0


def test_a_foreign_origin_is_refused_at_the_handshake(
    cluster: Cluster, incident: tuple[int, int]
) -> None:
    replica = cluster.replicas[0]

    async def scenario() -> tuple[int | None, int | None]:
        foreign = await refused_status(replica.ws_url, origin="https://evil.example")
        same = await refused_status(replica.ws_url, origin=f"http://127.0.0.1:{replica.port}")
        await _still_serving(cluster, incident[0])
        return foreign, same

    foreign, same = asyncio.run(scenario())
    assert foreign == 403
    assert same is None


def test_a_websocket_ticket_works_once(cluster: Cluster, incident: tuple[int, int]) -> None:
    replica = cluster.replicas[0]

    async def scenario() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            ticket = await ws_ticket(http, replica.url, cluster.token("responder", "thika"))
        ws = await open_ws(f"{replica.ws_url}?ticket={ticket}")
        try:
            seen["first use"] = await _recv(ws)
        finally:
            await ws.close()
        seen["second use"] = await refused_status(f"{replica.ws_url}?ticket={ticket}")
        seen["made-up ticket"] = await refused_status(f"{replica.ws_url}?ticket=wst_nope")
        ws = await open_ws(replica.ws_url)
        await ws.send('{"op": "auth", "token": "amk_not_a_token"}')
        seen["unknown token reply"] = await _recv(ws)
        with pytest.raises(ConnectionClosed) as closed:
            await _recv(ws)
        seen["unknown token"] = closed.value.rcvd.code if closed.value.rcvd else None
        await _still_serving(cluster, incident[0])
        return seen

    seen = asyncio.run(scenario())
    print("\ntickets and tokens:", seen)
    assert seen["first use"]["type"] == "welcome"
    assert seen["first use"]["role"] == "responder"
    assert seen["second use"] == 403
    assert seen["made-up ticket"] == 403
    assert seen["unknown token reply"] == {
        "type": "error",
        "status": 401,
        "detail": "invalid or revoked token",
    }
    assert seen["unknown token"] == 1008


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_events_reach_clients_as_ready_made_frames_whole_and_in_order(
    cluster: Cluster, incident: tuple[int, int]
) -> None:
    """Events of the frame length classes they reach arrive whole and parse, to a
    client that offered no extension and to one that offered permessage-deflate (which
    the server declines), and the replica wrote them through the direct path."""
    replica = cluster.replicas[0]
    incident_id, _ = incident
    manager = cluster.headers("manager", "nairobi")

    async def scenario() -> tuple[dict[str, list[int]], list[int], float]:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            before = _metric(
                (await http.get(f"{replica.url}/metrics")).text,
                "aidmesh_ws_frames_written_direct_total",
            )
        clients = {
            "plain": await _authed(replica.ws_url, cluster.token("observer", "thika")),
            "deflate offered": await _authed(
                replica.ws_url, cluster.token("observer", "thika"), compression="deflate"
            ),
        }
        seqs: dict[str, list[int]] = {name: [] for name in clients}
        sizes: list[int] = []
        try:
            subscribe = {"op": "subscribe", "scopes": [f"incident:{incident_id}"]}
            for ws in clients.values():
                await ws.send(orjson.dumps(subscribe).decode())
                assert (await _recv(ws))["type"] == "subscribed"
            # Events of both length classes an event reaches: under 126 bytes is not one
            # (every event names its incident, seq, type and time), 16-bit lengths are.
            async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
                for notes in ("", "n" * 200, "ü" * 900):
                    r = await http.post(
                        f"{replica.url}{API}/incidents/{incident_id}/requests",
                        json={"resource": "high-capacity-pump", "quantity": 2, "notes": notes},
                        headers=manager,
                    )
                    assert r.status_code == 201, r.text
            for name, ws in clients.items():
                while len(seqs[name]) < 3:
                    raw = await asyncio.wait_for(ws.recv(), 5)
                    message = orjson.loads(raw)
                    if message.get("type") == "event":
                        seqs[name].append(message["event"]["seq"])
                        if name == "plain":
                            sizes.append(len(raw.encode()))
        finally:
            for ws in clients.values():
                await ws.close()
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            after = _metric(
                (await http.get(f"{replica.url}/metrics")).text,
                "aidmesh_ws_frames_written_direct_total",
            )
        return seqs, sizes, after - before

    seqs, sizes, direct = asyncio.run(scenario())
    print(f"\ndirect frames: {direct:.0f}, event sizes {sizes}, seqs {seqs}")
    first = seqs["plain"][0]
    assert seqs["plain"] == [first, first + 1, first + 2]
    assert seqs["deflate offered"] == seqs["plain"]
    assert max(sizes) > 1000  # "ü" is two bytes: the length counts bytes, not characters
    assert direct >= 6
