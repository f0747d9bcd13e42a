"""The `offer` and `offer_status` websocket ops answer as their REST routes do, and an
offer's every step reaches the requesting city live."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession

from tests.support import World

API = "/api/v1"
OFFER = {"resource": "high-capacity-pump", "quantity": 2, "ready_at": "2026-02-12T14:00:00+03:00"}


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


def _incident(client: TestClient, world: World) -> int:
    r = client.post(
        f"{API}/incidents",
        json={"incident_type": "flood", "title": "x"},
        headers=world.headers("manager", "nairobi"),
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_offers_are_answered_alike_on_both_transports(client: TestClient, world: World) -> None:
    incident_id = _incident(client, world)
    rest = client.post(
        f"{API}/incidents/{incident_id}/offers",
        json=OFFER,
        headers={**world.headers("responder", "berlin"), "Idempotency-Key": "far"},
    )
    with _authed(client, world.token("responder", "berlin")) as ws:
        far = _ask(
            ws, {"op": "offer", "incident_id": incident_id, **OFFER, "idempotency_key": "far"}
        )
    assert rest.status_code == far["status"] == 404
    assert rest.json()["detail"] == far["detail"]

    with _authed(client, world.token("responder", "thika")) as ws:
        extra = _ask(
            ws,
            {
                "op": "offer",
                "incident_id": incident_id,
                **OFFER,
                "idempotency_key": "x",
                "status": "accepted",
            },
        )
        made = _ask(
            ws, {"op": "offer", "incident_id": incident_id, **OFFER, "idempotency_key": "o"}
        )
        again = _ask(
            ws, {"op": "offer", "incident_id": incident_id, **OFFER, "idempotency_key": "o"}
        )
        answer = _ask(
            ws, {"op": "offer_status", "offer_id": made["result"]["id"], "status": "accepted"}
        )
    assert extra["status"] == 422 and [i["loc"] for i in extra["detail"]] == [["status"]]
    assert made["type"] == "ack" and made["status"] == 201, made
    assert again["replayed"] is True and again["result"] == made["result"]
    rest_answer = client.post(
        f"{API}/offers/{made['result']['id']}/status",
        json={"status": "accepted"},
        headers=world.headers("responder", "thika"),
    )
    assert rest_answer.status_code == answer["status"] == 403
    assert rest_answer.json()["detail"] == answer["detail"]
    assert "requesting city's manager" in answer["detail"]

    with _authed(client, world.token("manager", "nairobi")) as ws:
        accepted = _ask(
            ws, {"op": "offer_status", "offer_id": made["result"]["id"], "status": "accepted"}
        )
    assert accepted["type"] == "ack" and accepted["result"]["status"] == "accepted", accepted
    assert accepted["result"]["claim_id"] is not None

    with _authed(client, world.token("observer", "nairobi")) as ws:
        refused = _ask(
            ws,
            {
                "op": "offer_status",
                "offer_id": made["result"]["id"],
                "status": "declined",
                "reason": "x",
            },
        )
    assert refused["status"] == 403
