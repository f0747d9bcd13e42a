"""One edge contract on both transports: the same bad input gets the same status and the
same detail over REST and over the websocket, and claims nothing.

Covered: idempotency keys with a space, a control character or a non-ASCII letter;
fields an op or body does not take; a role that may not send commands; and the
mapping of each error to a status, which both transports' answers come from.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import PoolTimeout as AsyncPoolTimeout
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.testclient import WebSocketTestSession

from service import edge
from service.domain import errors as de
from service.domain.actors import Actor, Role
from service.live_ops import ClaimOp
from service.wire import WireError
from tests.support import World

API = "/api/v1"

BAD_KEYS = [
    pytest.param("a b", id="space"),
    pytest.param("a\tb", id="tab"),
    pytest.param("a\x01b", id="control"),
    pytest.param("a\x7fb", id="delete"),
    pytest.param("ключ", id="cyrillic"),
    pytest.param("", id="empty"),
    pytest.param("k" * 201, id="oversized"),
]


@pytest.fixture
def request_id(client: TestClient, world: World) -> int:
    """A Nairobi flood asking for 4 pumps, Thika in ring 0."""
    manager = world.headers("manager", "nairobi")
    r = client.post(
        f"{API}/incidents", json={"incident_type": "flood", "title": "x"}, headers=manager
    )
    assert r.status_code == 201, r.text
    r = client.post(
        f"{API}/incidents/{r.json()['id']}/requests",
        json={"resource": "high-capacity-pump", "quantity": 4},
        headers=manager,
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


@contextmanager
def _authed(client: TestClient, token: str) -> Iterator[WebSocketTestSession]:
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"op": "auth", "token": token}))
        assert ws.receive_json()["type"] == "welcome"
        yield ws


def _ask(ws: WebSocketTestSession, message: dict[str, Any]) -> dict[str, Any]:
    ws.send_text(json.dumps({**message, "ref": "q"}))
    while True:
        reply: dict[str, Any] = ws.receive_json()
        if reply.get("ref") == "q":
            return reply


def _claimed(client: TestClient, world: World, request_id: int) -> int:
    r = client.get(f"{API}/requests", headers=world.headers("responder", "thika"))
    return next(int(i["claimed_quantity"]) for i in r.json()["data"] if i["id"] == request_id)


# Idempotency keys --------------------------------------------------------------------


@pytest.mark.parametrize("key", BAD_KEYS)
def test_a_key_that_is_not_printable_ascii_is_refused_on_both_transports(
    client: TestClient, world: World, request_id: int, key: str
) -> None:
    headers = {**world.headers("responder", "thika"), "Idempotency-Key": key.encode()}
    r = client.post(f"{API}/requests/{request_id}/claims", json={"quantity": 1}, headers=headers)
    assert r.status_code == 422, r.text
    with _authed(client, world.token("responder", "thika")) as ws:
        claim = {"op": "claim", "request_id": request_id, "quantity": 1, "idempotency_key": key}
        reply = _ask(ws, claim)
    assert reply["type"] == "error" and reply["status"] == 422, reply
    assert [issue["loc"] for issue in reply["detail"]] == [["idempotency_key"]]
    assert _claimed(client, world, request_id) == 0


def test_the_longest_printable_key_claims_on_both_transports(
    client: TestClient, world: World, request_id: int
) -> None:
    key = "".join(chr(c) for c in range(0x21, 0x7F)) * 2 + "k" * 12  # 200 characters
    headers = {**world.headers("responder", "thika"), "Idempotency-Key": key}
    r = client.post(f"{API}/requests/{request_id}/claims", json={"quantity": 1}, headers=headers)
    assert r.status_code == 201, r.text
    with _authed(client, world.token("responder", "thika")) as ws:
        claim = {"op": "claim", "request_id": request_id, "quantity": 1, "idempotency_key": key}
        reply = _ask(ws, claim)
    # The same city and key: the websocket replays the claim REST made.
    assert reply["type"] == "ack" and reply["replayed"] is True, reply
    assert reply["result"]["id"] == r.json()["id"]
    assert _claimed(client, world, request_id) == 1


# Unknown fields ----------------------------------------------------------------------


def test_an_unknown_field_in_a_claim_is_a_422_naming_it_on_both_transports(
    client: TestClient, world: World, request_id: int
) -> None:
    headers = {**world.headers("responder", "thika"), "Idempotency-Key": "extra-1"}
    r = client.post(
        f"{API}/requests/{request_id}/claims",
        json={"quantity": 1, "priority": "high"},
        headers=headers,
    )
    assert r.status_code == 422, r.text
    rest_issue = next(i for i in r.json()["detail"] if i["type"] == "extra_forbidden")
    with _authed(client, world.token("responder", "thika")) as ws:
        reply = _ask(
            ws,
            {
                "op": "claim",
                "request_id": request_id,
                "quantity": 1,
                "idempotency_key": "extra-2",
                "priority": "high",
            },
        )
    assert reply["type"] == "error" and reply["status"] == 422, reply
    # The same issue, located in the body over REST and in the message over the socket.
    assert rest_issue == {**reply["detail"][0], "loc": ["body", "priority"]}
    assert reply["detail"] == [
        {"loc": ["priority"], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
    ]
    assert _claimed(client, world, request_id) == 0


@pytest.mark.parametrize(
    "message",
    [
        {"op": "claim_status", "claim_id": 1, "status": "withdrawn", "excuse": "x"},
        {"op": "subscribe", "scopes": ["board"], "sinse": {"1": 0}},
        {"op": "unsubscribe", "scopes": [], "all": True},
        {"op": "ping", "payload": 1},
    ],
    ids=["claim_status", "subscribe", "unsubscribe", "ping"],
)
def test_every_websocket_op_refuses_a_field_it_does_not_take(
    client: TestClient, world: World, message: dict[str, Any]
) -> None:
    unknown = next(k for k in message if k not in ("op", "claim_id", "status", "scopes"))
    with _authed(client, world.token("responder", "thika")) as ws:
        reply = _ask(ws, message)
        assert reply["type"] == "error" and reply["status"] == 422, reply
        assert [i["loc"] for i in reply["detail"]] == [[unknown]]
        assert _ask(ws, {"op": "ping"}) == {"type": "pong", "ref": "q"}


# Who may send commands --------------------------------------------------------------


def test_an_observer_is_refused_commands_in_the_same_words_on_both_transports(
    client: TestClient, world: World, request_id: int
) -> None:
    headers = {**world.headers("observer", "thika"), "Idempotency-Key": "obs-1"}
    r = client.post(f"{API}/requests/{request_id}/claims", json={"quantity": 1}, headers=headers)
    with _authed(client, world.token("observer", "thika")) as ws:
        claim = {"op": "claim", "request_id": request_id, "quantity": 1, "idempotency_key": "o"}
        over_ws = _ask(ws, claim)
        # The role is refused before the fields are read, as over REST.
        bad = _ask(ws, {"op": "claim_status", "claim_id": 0, "status": "nowhere"})
    assert r.status_code == 403
    assert over_ws["status"] == bad["status"] == 403
    assert r.json()["detail"] == over_ws["detail"] == bad["detail"]
    assert over_ws["detail"] == "this needs a manager or responder token (yours is observer)"
    assert _claimed(client, world, request_id) == 0


def test_the_command_gate_lets_a_citys_manager_and_responder_through() -> None:
    for role in Role:
        actor = Actor(role=role, city_id=1, token_id=1)
        if role in (Role.MANAGER, Role.RESPONDER):
            assert edge.require_command_role(actor) is actor
        else:
            with pytest.raises(de.Forbidden, match=f"yours is {role.value}"):
                edge.require_command_role(actor)


# Shapes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "shaped"),
    [
        ("amk_abc", True),
        ("x" * 200, True),
        ("x" * 201, False),
        ("", False),
        ("a b", False),
        ("a\x00b", False),
        ("ключ", False),
    ],
)
def test_a_token_is_looked_up_only_when_it_could_be_one(secret: str, shaped: bool) -> None:
    assert edge.token_shaped(secret) is shaped


def test_the_unknown_field_rule_is_the_one_rest_bodies_follow() -> None:
    fields = {"request_id": 1, "quantity": 1, "idempotency_key": "k", "extra": 0}
    with pytest.raises(ValidationError) as refused:
        edge.read_fields(ClaimOp, fields)
    from_model = edge.validation_detail(refused.value.errors())
    assert from_model == edge.unknown_fields(fields, ClaimOp.model_fields)
    assert edge.unknown_fields(fields, [*ClaimOp.model_fields, "extra"]) == []


# Errors to answers ---------------------------------------------------------------------


def _dbapi(invalidated: bool) -> DBAPIError:
    return DBAPIError("select 1", None, Exception("boom"), connection_invalidated=invalidated)


@pytest.mark.parametrize(
    ("error", "status", "detail", "code"),
    [
        (de.NotFound("request 5 not found"), 404, "request 5 not found", "not_found"),
        (de.Forbidden("not yours"), 403, "not yours", "forbidden"),
        (de.Invalid("no such resource"), 422, "no such resource", "invalid"),
        (de.Conflict("only 1 left"), 409, "only 1 left", "conflict"),
        (de.DomainError("odd"), 400, "odd", "refused"),
        (WireError("not valid JSON"), 400, "not valid JSON", "unreadable"),
        (PoolTimeout(), 503, edge.BUSY, "database_busy"),
        (AsyncPoolTimeout(), 503, edge.BUSY, "database_busy"),
        (
            OperationalError("select 1", None, Exception("down")),
            503,
            edge.DATABASE_UNAVAILABLE,
            "database_unavailable",
        ),
        (_dbapi(invalidated=True), 503, edge.CONNECTION_LOST, "database_connection_lost"),
        (_dbapi(invalidated=False), 500, edge.INTERNAL, "internal_error"),
        (RedisConnectionError("no master"), 503, edge.REDIS_UNAVAILABLE, "redis_unavailable"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v)[:12],
)
def test_each_error_has_one_answer(error: Exception, status: int, detail: str, code: str) -> None:
    assert isinstance(error, edge.MAPPED)
    answer = edge.answer_for(error, "a test")
    assert answer == edge.Answer(status, detail, code)
    assert answer.retry is (status == 503)


def test_an_error_the_contract_does_not_know_is_left_to_the_transport_as_a_bug() -> None:
    assert edge.answer_for(KeyError("a bug"), "a test") is None
    assert not isinstance(KeyError("a bug"), edge.MAPPED)


def test_every_error_answered_is_one_the_rest_handlers_are_installed_for() -> None:
    from service.main import create_app

    handled = set(create_app().exception_handlers)
    assert set(edge.MAPPED) <= handled


# Claims from a roster package ------------------------------------------------------------


def test_a_claim_from_a_package_is_answered_alike_on_both_transports(
    client: TestClient, world: World, request_id: int
) -> None:
    made = client.post(
        f"{API}/cities/{world.city_ids['thika']}/roster",
        json={
            "name": "Pump team",
            "items": [{"resource": "high-capacity-pump", "quantity": 2}],
            "readiness_hours": 4,
            "self_sufficiency_days": 3,
        },
        headers=world.headers("manager", "thika"),
    )
    assert made.status_code == 201, made.text
    package_id = made.json()["id"]
    responder = world.headers("responder", "thika")
    over_rest = client.post(
        f"{API}/requests/{request_id}/claims",
        json={"quantity": 3, "package_id": package_id},
        headers={**responder, "Idempotency-Key": "too-many-rest"},
    )
    with _authed(client, world.token("responder", "thika")) as ws:
        claim = {"op": "claim", "request_id": request_id, "quantity": 3}
        too_many = _ask(ws, {**claim, "package_id": package_id, "idempotency_key": "too-many"})
        bad_id = _ask(ws, {**claim, "package_id": "1", "idempotency_key": "bad-id"})
        fits = _ask(ws, {**claim, "quantity": 2, "package_id": package_id, "idempotency_key": "ok"})
    assert over_rest.status_code == too_many["status"] == 409
    assert over_rest.json()["detail"] == too_many["detail"]
    assert "2 units left" in too_many["detail"]
    assert bad_id["status"] == 422 and [i["loc"] for i in bad_id["detail"]] == [["package_id"]]
    assert fits["type"] == "ack" and fits["result"]["package_id"] == package_id, fits
    roster = client.get(
        f"{API}/cities/{world.city_ids['thika']}/roster/{package_id}", headers=responder
    ).json()
    assert roster["items"][0]["committed_quantity"] == 2
    assert _claimed(client, world, request_id) == 2


def test_a_pass_is_answered_alike_on_both_transports(
    client: TestClient, world: World, request_id: int
) -> None:
    with _authed(client, world.token("responder", "machakos")) as ws:
        not_yet = _ask(ws, {"op": "pass", "request_id": request_id, "reason": "no pumps"})
        extra = _ask(ws, {"op": "pass", "request_id": request_id, "ring": 2})
    over_rest = client.post(
        f"{API}/requests/{request_id}/passes",
        json={"reason": "no pumps"},
        headers=world.headers("responder", "machakos"),
    )
    assert over_rest.status_code == not_yet["status"] == 403
    assert over_rest.json()["detail"] == not_yet["detail"]
    assert extra["status"] == 422 and [i["loc"] for i in extra["detail"]] == [["ring"]]
    with _authed(client, world.token("responder", "thika")) as ws:
        passed = _ask(ws, {"op": "pass", "request_id": request_id, "reason": "deployed"})
        again = _ask(ws, {"op": "pass", "request_id": request_id})
    assert passed["type"] == "ack" and passed["result"]["escalated_to_ring"] == 1, passed
    assert again["status"] == 409
