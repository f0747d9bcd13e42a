"""The websocket and sessions (issue #19, part 3): a browser's session cookie opens the
socket (from its own origin only), and signing out everywhere, or the person being
disabled, closes every open socket of that person with 4001 "signed out"."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from service.executor import Executor
from service.main import create_app
from service.sessions import SESSION_COOKIE
from service.settings import Settings
from tests.accounts.people import API, Signed, make_person, sign_in
from tests.realtime.test_ws_revocation import ControlLosingBus, _closed_within
from tests.support import FakeClock, World

# Heartbeats every 50 ms: a socket never closed fails its read instead of blocking.
BEATING = {"ws_heartbeat_s": 0.05}
ORIGIN = "http://testserver"


@pytest.fixture
def client(settings: Settings, world: World, clock: FakeClock) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update=BEATING), clock=clock)) as test_client:
        yield test_client


def _reply(ws: WebSocketTestSession) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = ws.receive_json()
        if message["type"] != "heartbeat":
            return message


def _open(client: TestClient, signed: Signed, origin: str = ORIGIN) -> Any:
    return client.websocket_connect(
        "/ws", headers={"cookie": f"{SESSION_COOKIE}={signed.session}", "origin": origin}
    )


def test_a_session_cookie_opens_the_websocket_as_that_person(
    client: TestClient, world: World, executor: Executor
) -> None:
    person = make_person(executor, world, ["responder"], "thika", "socket@thika.example")
    signed = sign_in(client, person.email)
    with _open(client, signed) as ws:
        welcome = _reply(ws)
        assert welcome["type"] == "welcome"
        assert (welcome["role"], welcome["city_id"]) == ("responder", world.city_ids["thika"])
        ws.send_text(json.dumps({"op": "subscribe", "scopes": [f"city:{world.city_ids['thika']}"]}))
        assert _reply(ws)["type"] == "subscribed"


def test_a_foreign_origin_or_an_ended_session_is_refused_at_the_handshake(
    client: TestClient, world: World, executor: Executor
) -> None:
    person = make_person(executor, world, ["responder"], "thika", "refused@thika.example")
    signed = sign_in(client, person.email)
    with (
        pytest.raises(WebSocketDisconnect) as foreign,
        _open(client, signed, origin="https://evil.example") as ws,
    ):
        ws.receive_json()
    assert foreign.value.reason == "origin not allowed"
    r = client.post(f"{API}/auth/sign-out", headers=signed.write)
    assert r.status_code == 200
    with pytest.raises(WebSocketDisconnect) as ended, _open(client, signed) as ws:
        ws.receive_json()
    assert ended.value.reason == "session expired or signed out"


def test_signing_out_everywhere_closes_every_socket_of_that_person_and_no_one_elses(
    client: TestClient, world: World, executor: Executor
) -> None:
    person = make_person(executor, world, ["responder"], "thika", "everywhere@thika.example")
    other = make_person(executor, world, ["responder"], "thika", "colleague@thika.example")
    laptop, phone, desk = (sign_in(client, person.email) for _ in range(3))
    theirs = sign_in(client, other.email)
    token = world.token("responder", "thika")
    with (
        _open(client, laptop) as first,
        _open(client, phone) as second,
        _open(client, theirs) as colleague,
        client.websocket_connect("/ws") as machine,
    ):
        machine.send_text(json.dumps({"op": "auth", "token": token}))
        for ws in (first, second, colleague, machine):
            assert _reply(ws)["type"] == "welcome"
        r = client.post(f"{API}/auth/sign-out-everywhere", headers=desk.write)
        assert r.status_code == 200 and r.json() == {"sessions_ended": 3}
        for ws in (first, second):
            closed = _closed_within(ws, 5.0)
            assert (closed.code, closed.reason) == (4001, "signed out")
        for ws in (colleague, machine):
            ws.send_text('{"op": "ping"}')
            assert _reply(ws) == {"type": "pong"}


def test_disabling_a_person_closes_their_sockets_and_refuses_their_commands(
    client: TestClient, world: World, executor: Executor
) -> None:
    person = make_person(executor, world, ["responder"], "thika", "disabled@thika.example")
    signed = sign_in(client, person.email)
    with _open(client, signed) as ws:
        assert _reply(ws)["type"] == "welcome"
        r = client.patch(
            f"{API}/people/{person.id}",
            json={"disabled": True},
            headers=world.headers("manager", "thika"),
        )
        assert r.status_code == 200, r.text
        closed = _closed_within(ws, 5.0)
    assert (closed.code, closed.reason) == (4001, "signed out")


def test_a_claim_over_the_websocket_names_the_person(
    client: TestClient, world: World, executor: Executor
) -> None:
    manager = world.headers("manager", "nairobi")
    incident = client.post(
        f"{API}/incidents", json={"incident_type": "flood", "title": "x"}, headers=manager
    ).json()["id"]
    request_id = client.post(
        f"{API}/incidents/{incident}/requests",
        json={"resource": "high-capacity-pump", "quantity": 4},
        headers=manager,
    ).json()["id"]
    person = make_person(
        executor, world, ["responder"], "thika", "claimer@thika.example", name="Wambui K."
    )
    signed = sign_in(client, person.email)
    with _open(client, signed) as ws:
        assert _reply(ws)["type"] == "welcome"
        claim = {"op": "claim", "request_id": request_id, "quantity": 1, "idempotency_key": "p1"}
        ws.send_text(json.dumps({**claim, "ref": "c"}))
        ack = _reply(ws)
    assert ack["type"] == "ack" and ack["status"] == 201, ack
    events = client.get(f"{API}/incidents/{incident}/events", headers=manager).json()["data"]
    made = [e for e in events if e["type"] == "claim.made"]
    assert [(e["actor_user_id"], e["actor_name"]) for e in made] == [(person.id, "Wambui K.")]


def test_a_replica_that_lost_the_news_of_a_sign_out_closes_the_socket_after_reconnecting(
    settings: Settings, world: World, clock: FakeClock, executor: Executor
) -> None:
    bus = ControlLosingBus()
    app = create_app(settings.model_copy(update=BEATING), clock=clock, bus=bus)
    person = make_person(executor, world, ["responder"], "thika", "lost@thika.example")
    with TestClient(app) as client:
        signed = sign_in(client, person.email)
        with _open(client, signed) as ws:
            assert _reply(ws)["type"] == "welcome"
            r = client.post(f"{API}/auth/sign-out", headers=signed.write)
            assert r.status_code == 200
            # The control message was lost: the socket is still open, its commands refused.
            ws.send_text(json.dumps({"op": "claim_status", "claim_id": 1, "status": "withdrawn"}))
            assert _reply(ws)["status"] == 401
            client.portal.call(bus.reconnected)  # type: ignore[union-attr]
            closed = _closed_within(ws, 5.0)
    assert (closed.code, closed.reason) == (4001, "signed out")
