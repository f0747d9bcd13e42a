"""Bad input over the websocket (RELIABILITY S6 and the bad-input list), on every backend:
each bad frame gets an error frame with a 4xx and a `detail`, the socket stays open,
nothing is stored, and the database never sees an id it cannot hold.

Classes of input, each with generated cases (hypothesis) beside the known ones:
duplicate JSON keys at any depth, binary frames, ids beyond the database's integer
range (or zero, negative, or not written as plain digits) in scopes, `since` keys
and seqs, and command fields; oversized `since` maps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from realtime.ws_endpoint import BINARY_REFUSED
from service.main import create_app
from service.models import MAX_ID
from service.settings import Settings
from service.wire import decode
from tests.support import FakeClock, World

API = "/api/v1"
# Generated cases come faster than a client may send; this suite is not about the rate.
FAST = {"ws_messages_per_s": 100_000.0, "ws_message_burst": 100_000}
EXAMPLES = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def client(settings: Settings, world: World, clock: FakeClock) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update=FAST), clock=clock)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def seeded(client: TestClient, world: World) -> tuple[int, int]:
    """(incident id, request id): a Nairobi flood asking for 4 pumps, Thika in ring 0."""
    manager = world.headers("manager", "nairobi")
    r = client.post(
        f"{API}/incidents", json={"incident_type": "flood", "title": "x"}, headers=manager
    )
    assert r.status_code == 201, r.text
    incident_id = int(r.json()["id"])
    r = client.post(
        f"{API}/incidents/{incident_id}/requests",
        json={"resource": "high-capacity-pump", "quantity": 4},
        headers=manager,
    )
    assert r.status_code == 201, r.text
    return incident_id, int(r.json()["id"])


@contextmanager
def _authed(client: TestClient, token: str) -> Iterator[WebSocketTestSession]:
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"op": "auth", "token": token}))
        assert ws.receive_json()["type"] == "welcome"
        yield ws


def _reply(ws: WebSocketTestSession) -> dict[str, Any]:
    """The next reply that is not an event or a heartbeat."""
    while True:
        message: dict[str, Any] = ws.receive_json()
        if message.get("type") not in ("event", "heartbeat"):
            return message


def _still_open(ws: WebSocketTestSession) -> None:
    ws.send_text('{"op": "ping", "ref": "alive"}')
    assert _reply(ws) == {"type": "pong", "ref": "alive"}


def _refused(ws: WebSocketTestSession, raw: str | bytes, statuses: tuple[int, ...]) -> str:
    """Send one bad frame; its reply must be an error with one of `statuses`; the
    socket must answer the next frame. Returns the detail."""
    if isinstance(raw, bytes):
        ws.send_bytes(raw)
    else:
        ws.send_text(raw)
    reply = _reply(ws)
    assert reply.get("type") == "error" and reply.get("status") in statuses, (raw[:200], reply)
    assert reply.get("detail"), reply
    _still_open(ws)
    return str(reply["detail"])


def _claimed(client: TestClient, world: World, request_id: int) -> int:
    r = client.get(f"{API}/requests", headers=world.headers("responder", "thika"))
    for item in r.json()["data"]:
        if item["id"] == request_id:
            return int(item["claimed_quantity"])
    raise AssertionError(f"request {request_id} not in Thika's inbox")


# Duplicate keys ----------------------------------------------------------------------


def test_a_claim_frame_with_a_duplicate_key_claims_nothing(
    client: TestClient, world: World, seeded: tuple[int, int]
) -> None:
    _, request_id = seeded
    with _authed(client, world.token("responder", "thika")) as ws:
        raw = (
            f'{{"op": "claim", "request_id": {request_id}, "quantity": 1, "quantity": 3,'
            ' "idempotency_key": "dup-1"}'
        )
        detail = _refused(ws, raw, (400,))
    assert "duplicate key 'quantity'" in detail
    assert _claimed(client, world, request_id) == 0


@EXAMPLES
@given(
    key=st.sampled_from(["op", "request_id", "quantity", "idempotency_key", "ref", "scopes"]),
    depth=st.integers(0, 3),
    first=st.integers(1, 3),
    second=st.integers(1, 3),
)
def _duplicates(ws: WebSocketTestSession, key: str, depth: int, first: int, second: int) -> None:
    inner = f'{{"{key}": {first}, "x": 0, "{key}": {second}}}'
    for _ in range(depth):
        inner = f'{{"nested": {inner}}}'
    raw = f'{{"op": "claim", "request_id": 1, "idempotency_key": "k", "extra": {inner}}}'
    if depth == 0:
        raw = inner
    assert "duplicate key" in _refused(ws, raw, (400,))


def test_a_duplicate_key_anywhere_in_a_frame_is_refused(
    client: TestClient, world: World, seeded: tuple[int, int]
) -> None:
    _, request_id = seeded
    with _authed(client, world.token("responder", "thika")) as ws:
        _duplicates(ws)
    assert _claimed(client, world, request_id) == 0


# Binary frames -----------------------------------------------------------------------


@EXAMPLES
@given(st.binary(max_size=300) | st.builds(str.encode, st.text(max_size=100)))
def _binary(ws: WebSocketTestSession, data: bytes) -> None:
    assert _refused(ws, data, (400,)) == BINARY_REFUSED


def test_binary_frames_are_refused_even_when_they_hold_json(
    client: TestClient, world: World, seeded: tuple[int, int]
) -> None:
    _, request_id = seeded
    claim = {"op": "claim", "request_id": request_id, "quantity": 1, "idempotency_key": "b"}
    with _authed(client, world.token("responder", "thika")) as ws:
        assert _refused(ws, json.dumps(claim).encode(), (400,)) == BINARY_REFUSED
        _binary(ws)
    assert _claimed(client, world, request_id) == 0


@pytest.mark.parametrize(
    ("first", "detail"),
    [
        (b'{"op": "auth", "token": "t"}', BINARY_REFUSED),
        ('{"op": "auth", "token": "a", "token": "b"}', "duplicate key 'token'"),
        ("not json", "not valid JSON"),
    ],
)
def test_a_bad_first_frame_gets_an_error_frame_then_a_policy_close(
    client: TestClient, first: str | bytes, detail: str
) -> None:
    with client.websocket_connect("/ws") as ws:
        if isinstance(first, bytes):
            ws.send_bytes(first)
        else:
            ws.send_text(first)
        reply = ws.receive_json()
        assert reply["type"] == "error" and reply["status"] == 400, reply
        assert detail in reply["detail"]
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1008


# Ids beyond the database's range -------------------------------------------------------

_OUT_OF_RANGE = st.integers(MAX_ID + 1, 10**40) | st.integers(-(10**40), 0)
# Not plain digits: signs, zero padding, spaces, other scripts' digits, exponents.
_NOT_AN_ID = st.sampled_from(["+5", "05", " 5", "5 ", "\u0661\u0662", "1e3", "5.0", "", "0x10"])


@EXAMPLES
@given(kind=st.sampled_from(["incident", "city"]), n=_OUT_OF_RANGE)
def _scope_ids(ws: WebSocketTestSession, kind: str, n: int) -> None:
    _refused(ws, json.dumps({"op": "subscribe", "scopes": [f"{kind}:{n}"]}), (400,))


@EXAMPLES
@given(key=_OUT_OF_RANGE.map(str) | _NOT_AN_ID, seq=st.integers(0, 5))
def _since_keys(ws: WebSocketTestSession, key: str, seq: int) -> None:
    message = {"op": "subscribe", "scopes": ["board"], "since": {key: seq}}
    _refused(ws, json.dumps(message), (400,))


@EXAMPLES
@given(seq=st.integers(MAX_ID + 1, 10**40) | st.integers(-(10**40), -1))
def _since_values(ws: WebSocketTestSession, seq: int) -> None:
    message = {"op": "subscribe", "scopes": ["board"], "since": {"1": seq}}
    _refused(ws, json.dumps(message), (400,))


@EXAMPLES
@given(
    field=st.sampled_from(["request_id", "quantity"]),
    value=_OUT_OF_RANGE | st.floats(allow_nan=False, allow_infinity=False) | st.just(True),
)
def _claim_fields(ws: WebSocketTestSession, request_id: int, field: str, value: object) -> None:
    message = {"op": "claim", "request_id": request_id, "quantity": 1, "idempotency_key": "r"}
    message[field] = value
    _refused(ws, json.dumps(message), (422,))


@EXAMPLES
@given(value=_OUT_OF_RANGE)
def _claim_ids(ws: WebSocketTestSession, value: int) -> None:
    message = {"op": "claim_status", "claim_id": value, "status": "withdrawn"}
    _refused(ws, json.dumps(message), (422,))


def test_ids_beyond_the_integer_range_are_refused_before_the_database(
    client: TestClient, world: World, seeded: tuple[int, int]
) -> None:
    _, request_id = seeded
    with _authed(client, world.token("responder", "thika")) as ws:
        # The values of the report, then the generated ones.
        assert "out of range" in _refused(
            ws, '{"op": "subscribe", "scopes": ["incident:9999999999"]}', (400,)
        )
        assert "not an incident id" in _refused(
            ws,
            '{"op": "subscribe", "scopes": ["board"], "since": {"99999999999999999999": 1}}',
            (400,),
        )
        _scope_ids(ws)
        _since_keys(ws)
        _since_values(ws)
        _claim_fields(ws, request_id)
        _claim_ids(ws)
        # The largest id is an id: not found, not a crash.
        ws.send_text(json.dumps({"op": "subscribe", "scopes": [f"incident:{MAX_ID}"]}))
        assert _reply(ws)["status"] == 404
        _still_open(ws)
    assert _claimed(client, world, request_id) == 0


def test_the_bound_on_ids_is_the_services_one() -> None:
    from service.main import _limits

    assert _limits(Settings()).max_id == MAX_ID


# since ------------------------------------------------------------------------------


def test_since_is_capped_and_read_in_one_query_however_many_keys(
    client: TestClient, world: World, seeded: tuple[int, int]
) -> None:
    incident_id, _ = seeded
    cap = Settings().ws_max_since_keys
    statements: list[str] = []
    engine = client.app.state.parts.db.engine  # type: ignore[attr-defined]

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    with _authed(client, world.token("responder", "thika")) as ws:
        over = {str(i): 0 for i in range(1, cap + 2)}
        detail = _refused(
            ws, json.dumps({"op": "subscribe", "scopes": ["board"], "since": over}), (400,)
        )
        assert f"at most {cap}" in detail

        # The worst case within the cap: every key an incident id, most of them unknown.
        since = {str(MAX_ID - i): 0 for i in range(cap - 1)}
        since[str(incident_id)] = 0
        event.listen(engine, "before_cursor_execute", count)
        try:
            began = time.perf_counter()
            ws.send_text(
                json.dumps({"op": "subscribe", "scopes": ["board"], "since": since, "ref": "s"})
            )
            replayed = []
            while (reply := ws.receive_json())["type"] != "subscribed":
                replayed.append(reply)
            took = time.perf_counter() - began
        finally:
            event.remove(engine, "before_cursor_execute", count)
    reads = [s for s in statements if "incidents" in s]
    print(
        f"\nsubscribe with {cap} since keys: {took * 1000:.1f} ms, {len(statements)} statements"
        f" ({len(reads)} on incidents), {len(replayed)} events replayed"
    )
    assert [r["event"]["seq"] for r in replayed] == [1, 2]
    # One read of the incidents for every key at once (a query per key took 1.8 s).
    assert len(reads) == 1, reads
    assert len(statements) <= 4, statements
    assert took < 1.0


def test_a_claim_frame_decodes_in_microseconds() -> None:
    frame = json.dumps(
        {"op": "claim", "request_id": 5, "quantity": 2, "idempotency_key": "k-1", "ref": "r"}
    )
    rounds = 20_000
    began = time.perf_counter()
    for _ in range(rounds):
        decode(frame)
    per_frame_us = (time.perf_counter() - began) / rounds * 1e6
    print(f"\nclaim frame decode: {per_frame_us:.1f} us")
    assert per_frame_us < 100
