"""Revocation reaches open websockets (RELIABILITY S4): a token revoked while its sockets
are open has them closed with 4001 "token revoked" within a second, on every replica;
its commands are refused with 401 even where the bus lost the news; and a ticket
issued before the revocation no longer opens a socket.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed

from realtime.bus import InMemoryBus
from service.main import create_app
from service.persistence.tables import WsTicket
from service.settings import Settings
from tests.realtime.live_client import open_ws
from tests.replicas import cluster
from tests.support import FakeClock, World

API = "/api/v1"
# Heartbeats every 50 ms, so a socket that is never closed fails the test instead of
# blocking the test client's receive for good.
BEATING = {"ws_heartbeat_s": 0.05}


@pytest.fixture
def client(settings: Settings, world: World, clock: FakeClock) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update=BEATING), clock=clock)) as test_client:
        yield test_client


def _closed_within(ws: WebSocketTestSession, timeout_s: float) -> WebSocketDisconnect:
    """Read until the server closes the socket; fail if it is still open after `timeout_s`."""
    deadline = time.perf_counter() + timeout_s
    try:
        while time.perf_counter() < deadline:
            ws.receive_json()
    except WebSocketDisconnect as closed:
        return closed
    raise AssertionError(f"the socket was still open after {timeout_s} s")


def _new_token(client: TestClient, world: World, role: str = "responder") -> tuple[int, str]:
    r = client.post(
        f"{API}/tokens",
        json={"role": role, "city_id": world.city_ids["thika"], "label": "to revoke"},
        headers=world.headers("admin"),
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"]), str(r.json()["token"])


def _revoke(client: TestClient, world: World, token_id: int) -> None:
    r = client.post(f"{API}/tokens/{token_id}/revoke", headers=world.headers("admin"))
    assert r.status_code == 200, r.text


def _raise_request(client: TestClient, world: World) -> int:
    manager = world.headers("manager", "nairobi")
    r = client.post(
        f"{API}/incidents", json={"incident_type": "flood", "title": "x"}, headers=manager
    )
    r = client.post(
        f"{API}/incidents/{r.json()['id']}/requests",
        json={"resource": "high-capacity-pump", "quantity": 4},
        headers=manager,
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _reply(ws: WebSocketTestSession) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = ws.receive_json()
        if message["type"] != "heartbeat":
            return message


def test_revoking_a_token_closes_its_open_socket_with_4001(
    client: TestClient, world: World
) -> None:
    token_id, secret = _new_token(client, world)
    other = world.token("responder", "thika")
    with client.websocket_connect("/ws") as mine, client.websocket_connect("/ws") as theirs:
        for ws, token in ((mine, secret), (theirs, other)):
            ws.send_text(json.dumps({"op": "auth", "token": token}))
            assert _reply(ws)["type"] == "welcome"
        revoked_at = time.perf_counter()
        _revoke(client, world, token_id)
        closed = _closed_within(mine, 2.0)
        took = time.perf_counter() - revoked_at
        # Another token's socket is untouched.
        theirs.send_text('{"op": "ping"}')
        assert _reply(theirs) == {"type": "pong"}
    print(f"\nS4 in-process: revoked token's socket closed {took * 1000:.0f} ms after the answer")
    assert (closed.code, closed.reason) == (4001, "token revoked")
    assert took < 1.0


class ControlLosingBus(InMemoryBus):
    """An in-process bus that loses every control message, and can say it reconnected."""

    async def publish(self, message: bytes) -> None:
        if orjson.loads(message).get("type") == "control":
            return
        await super().publish(message)

    def reconnected(self) -> None:
        for callback in self._reconnect:
            callback()


@pytest.fixture
def lossy(settings: Settings, world: World, clock: FakeClock) -> Iterator[tuple[TestClient, Any]]:
    bus = ControlLosingBus()
    app = create_app(settings.model_copy(update=BEATING), clock=clock, bus=bus)
    with TestClient(app) as test_client:
        yield test_client, bus


def test_a_revoked_tokens_claim_is_refused_even_when_the_bus_lost_the_news(
    lossy: tuple[TestClient, ControlLosingBus], world: World
) -> None:
    client, bus = lossy
    request_id = _raise_request(client, world)
    token_id, secret = _new_token(client, world)
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"op": "auth", "token": secret}))
        assert ws.receive_json()["type"] == "welcome"
        _revoke(client, world, token_id)
        claim = {"op": "claim", "request_id": request_id, "quantity": 1, "idempotency_key": "r1"}
        ws.send_text(json.dumps({**claim, "ref": "c"}))
        refused = _reply(ws)
        status = {"op": "claim_status", "claim_id": 1, "status": "withdrawn", "ref": "s"}
        ws.send_text(json.dumps(status))
        refused_status = _reply(ws)
        # A lost connection to the bus makes the replica check its connected tokens.
        client.portal.call(bus.reconnected)  # type: ignore[union-attr]
        closed = _closed_within(ws, 2.0)
    assert refused == {
        "type": "error",
        "status": 401,
        "detail": "invalid or revoked token",
        "ref": "c",
    }
    assert refused_status["status"] == 401, refused_status
    assert closed.code == 4001
    r = client.get(f"{API}/requests", headers=world.headers("responder", "thika"))
    assert [item["claimed_quantity"] for item in r.json()["data"]] == [0]


def test_a_ticket_issued_before_the_revocation_is_refused(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    token_id, secret = _new_token(client, world)
    mine = {"Authorization": f"Bearer {secret}"}
    ticket = client.post(f"{API}/ws-ticket", headers=mine).json()["ticket"]
    _revoke(client, world, token_id)
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect(f"/ws?ticket={ticket}"),
    ):
        pass  # the handshake itself is refused: nothing to do inside
    assert refused.value.code == 1008
    assert client.post(f"{API}/ws-ticket", headers=mine).status_code == 401


def test_a_ticket_opens_one_socket_and_expires(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    headers = world.headers("responder", "thika")
    ticket = client.post(f"{API}/ws-ticket", headers=headers).json()["ticket"]
    with client.websocket_connect(f"/ws?ticket={ticket}") as ws:
        assert ws.receive_json()["type"] == "welcome"
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(f"/ws?ticket={ticket}"):
        pass  # the handshake itself is refused: nothing to do inside
    late = client.post(f"{API}/ws-ticket", headers=headers).json()
    clock.advance(timedelta(seconds=late["expires_in_s"] + 1))
    with (
        pytest.raises(WebSocketDisconnect),
        client.websocket_connect(f"/ws?ticket={late['ticket']}"),
    ):
        pass  # the handshake itself is refused: nothing to do inside
    # Issuing sweeps the expired ones: only the newest ticket is left.
    client.post(f"{API}/ws-ticket", headers=headers)
    with client.app.state.parts.db.read() as session:  # type: ignore[attr-defined]
        assert len(session.exec(select(WsTicket)).all()) == 1


def test_revocation_closes_the_tokens_sockets_on_every_replica_within_a_second(
    tmp_path: Any,
) -> None:
    with cluster(tmp_path, replicas=2) as built:
        replicas = built.replicas

        async def scenario() -> list[tuple[int | None, str | None, float]]:
            async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
                r = await http.post(
                    f"{replicas[0].url}{API}/tokens",
                    json={"role": "responder", "city_id": built.city["thika"]},
                    headers=built.headers("admin"),
                )
                token_id, secret = r.json()["id"], r.json()["token"]
                sockets = []
                for replica in (*replicas, *replicas):
                    ws = await open_ws(replica.ws_url)
                    await ws.send(json.dumps({"op": "auth", "token": secret}))
                    assert orjson.loads(await ws.recv())["type"] == "welcome"
                    sockets.append(ws)
                began = time.perf_counter()
                r = await http.post(
                    f"{replicas[1].url}{API}/tokens/{token_id}/revoke",
                    headers=built.headers("admin"),
                )
                assert r.status_code == 200, r.text

                async def closed(ws: Any) -> tuple[int | None, str | None, float]:
                    try:
                        while True:
                            await asyncio.wait_for(ws.recv(), 5)
                    except ConnectionClosed as exc:
                        rcvd = exc.rcvd
                        took = time.perf_counter() - began
                        return (rcvd.code, rcvd.reason, took) if rcvd else (None, None, took)

                return await asyncio.gather(*(closed(ws) for ws in sockets))

        results = asyncio.run(scenario())
    worst = max(took for _, _, took in results)
    print(
        f"\nS4 two replicas: {len(results)} sockets of a revoked token closed, "
        f"codes {sorted({code for code, _, _ in results})}, slowest {worst * 1000:.0f} ms"
    )
    assert all((code, reason) == (4001, "token revoked") for code, reason, _ in results), results
    assert worst < 1.0


def _token(client: TestClient, world: World, **body: Any) -> tuple[int, str]:
    body = {"role": "responder", "city_id": world.city_ids["thika"], **body}
    r = client.post(f"{API}/tokens", json=body, headers=world.headers("admin"))
    assert r.status_code == 201, r.text
    return int(r.json()["id"]), str(r.json()["token"])


def test_an_expired_tokens_commands_are_refused_and_the_sweep_closes_its_socket(
    lossy: tuple[TestClient, ControlLosingBus], world: World, clock: FakeClock
) -> None:
    client, bus = lossy
    request_id = _raise_request(client, world)
    _, secret = _token(client, world, expires_in_days=1)
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"op": "auth", "token": secret}))
        assert _reply(ws)["type"] == "welcome"
        clock.now += timedelta(days=1)
        claim = {"op": "claim", "request_id": request_id, "quantity": 1, "idempotency_key": "e1"}
        ws.send_text(json.dumps({**claim, "ref": "c"}))
        refused = _reply(ws)
        client.portal.call(bus.reconnected)  # type: ignore[union-attr]
        closed = _closed_within(ws, 2.0)
    assert refused == {
        "type": "error",
        "status": 401,
        "detail": "invalid or revoked token",
        "ref": "c",
    }
    assert closed.code == 4001
    r = client.get(f"{API}/requests", headers=world.headers("responder", "thika"))
    assert [item["claimed_quantity"] for item in r.json()["data"]] == [0]


def test_a_token_without_the_claims_scope_sends_no_commands_over_the_websocket(
    client: TestClient, world: World
) -> None:
    request_id = _raise_request(client, world)
    answers = {}
    for scope in ("read", "webhooks", "claims"):
        _, secret = _token(client, world, scopes=[scope])
        with client.websocket_connect("/ws") as ws:
            ws.send_text(json.dumps({"op": "auth", "token": secret}))
            assert _reply(ws)["type"] == "welcome"
            claim = {"op": "claim", "request_id": request_id, "quantity": 1}
            ws.send_text(json.dumps({**claim, "idempotency_key": scope, "ref": scope}))
            answers[scope] = _reply(ws)
    assert answers["read"]["status"] == 403 and "scopes (read)" in answers["read"]["detail"]
    assert answers["webhooks"]["status"] == 403
    assert answers["claims"]["type"] == "ack" and answers["claims"]["status"] == 201


def test_rotating_a_token_closes_its_open_sockets_and_the_new_secret_connects(
    client: TestClient, world: World
) -> None:
    token_id, secret = _token(client, world)
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"op": "auth", "token": secret}))
        assert _reply(ws)["type"] == "welcome"
        r = client.post(f"{API}/tokens/{token_id}/rotate", headers=world.headers("admin"))
        assert r.status_code == 200, r.text
        closed = _closed_within(ws, 2.0)
    assert (closed.code, closed.reason) == (4001, "token rotated")
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"op": "auth", "token": r.json()["token"]}))
        assert _reply(ws)["type"] == "welcome"
