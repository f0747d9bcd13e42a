"""Who is coming, and when: a move to en route carries the ETA and the team, an early end
carries its reason, over REST and the websocket alike, into the claim, its event and
the audit trail; details that do not belong to the move are refused."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import FakeClock, World

API = "/api/v1"


def _accepted_claim(client: TestClient, world: World, quantity: int = 2) -> dict[str, Any]:
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
    r = client.post(
        f"{API}/requests/{r.json()['id']}/claims",
        json={"quantity": quantity},
        headers={**world.headers("responder", "thika"), "Idempotency-Key": "eta-1"},
    )
    assert r.status_code == 201, r.text
    claim: dict[str, Any] = r.json()
    r = client.post(
        f"{API}/claims/{claim['id']}/status", json={"status": "accepted"}, headers=manager
    )
    assert r.status_code == 200, r.text
    return claim


def _move(
    client: TestClient, world: World, claim_id: int, body: dict[str, Any], who: str = "thika"
) -> Any:
    role = "manager" if who == "nairobi" else "responder"
    return client.post(
        f"{API}/claims/{claim_id}/status", json=body, headers=world.headers(role, who)
    )


def _iso(clock: FakeClock, minutes: int) -> str:
    return (clock.now + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def test_en_route_carries_eta_and_team_into_the_claim_its_event_and_the_audit_trail(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    claim = _accepted_claim(client, world)
    body = {
        "status": "en_route",
        "eta": _iso(clock, 90),
        "team_lead": "Wanjiru Kamau",
        "team_size": 6,
        "vehicle": "Truck KBZ 123A",
        "contact": "+254 700 000 111",
    }
    r = _move(client, world, claim["id"], body)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["eta_at"].startswith((clock.now + timedelta(minutes=90)).strftime("%Y-%m-%dT%H:%M"))
    assert (got["team_lead"], got["team_size"], got["vehicle"], got["contact"]) == (
        "Wanjiru Kamau",
        6,
        "Truck KBZ 123A",
        "+254 700 000 111",
    )
    events = client.get(
        f"{API}/incidents/{claim['incident_id']}/events",
        headers=world.headers("manager", "nairobi"),
    ).json()["data"]
    moved = events[-1]
    assert moved["type"] == "claim.changed"
    assert moved["actor_city_id"] == world.city_ids["thika"]
    assert moved["data"]["claim"]["status"] == "en_route"
    assert moved["data"]["claim"]["team_lead"] == "Wanjiru Kamau"
    assert moved["data"]["claim"]["eta_at"] == got["eta_at"]
    # The board's snapshot carries it too.
    detail = client.get(
        f"{API}/incidents/{claim['incident_id']}", headers=world.headers("observer", "thika")
    ).json()
    assert [c["eta_at"] for c in detail["claims"]] == [got["eta_at"]]


def test_eta_in_the_past_or_now_is_refused_and_nothing_moves(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    claim = _accepted_claim(client, world)
    for minutes in (-5, 0):
        r = _move(client, world, claim["id"], {"status": "en_route", "eta": _iso(clock, minutes)})
        assert r.status_code == 422, r.text
        assert r.json()["detail"] == "eta must be in the future"
    got = client.get(f"{API}/claims/{claim['id']}", headers=world.headers("responder", "thika"))
    assert (got.json()["status"], got.json()["eta_at"]) == ("accepted", None)


@pytest.mark.parametrize(
    "eta",
    ["2026-02-12T09:00:00", "2026-02-12", "1770886800", 1770886800, "soon", ""],
)
def test_eta_without_a_zone_or_not_a_time_is_422(
    client: TestClient, world: World, eta: object
) -> None:
    claim = _accepted_claim(client, world)
    r = _move(client, world, claim["id"], {"status": "en_route", "eta": eta})
    assert r.status_code == 422, r.text


@pytest.mark.parametrize(
    "extra",
    [
        {"team_size": 0},
        {"team_size": "6"},
        {"team_size": True},
        {"team_lead": ""},
        {"team_lead": "x" * 201},
        {"vehicle": "a\x00b"},
        {"contact": None, "crew": 3},
        {"eta_at": "2026-02-12T09:30:00Z"},
    ],
)
def test_bad_team_details_are_422(
    client: TestClient, world: World, clock: FakeClock, extra: dict[str, Any]
) -> None:
    claim = _accepted_claim(client, world)
    body = {"status": "en_route", "eta": _iso(clock, 30), **extra}
    r = _move(client, world, claim["id"], body)
    assert r.status_code == 422, r.text


def test_team_details_only_go_with_en_route(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    claim = _accepted_claim(client, world)
    r = _move(client, world, claim["id"], {"status": "withdrawn", "eta": _iso(clock, 30)})
    assert r.status_code == 422
    assert r.json()["detail"] == "eta_at only go with a move to en_route"
    r = _move(client, world, claim["id"], {"status": "en_route", "reason": "traffic"})
    assert r.status_code == 422
    assert r.json()["detail"] == "a reason only goes with declined or withdrawn"


def test_a_stand_down_carries_its_reason_and_a_cancelled_request_says_why(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    claim = _accepted_claim(client, world)
    assert _move(
        client, world, claim["id"], {"status": "en_route", "eta": _iso(clock, 45)}
    ).is_success
    r = _move(
        client,
        world,
        claim["id"],
        {"status": "declined", "reason": "Water receded; pumps not needed"},
        who="nairobi",
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["end_reason"]) == (
        "declined",
        "Water receded; pumps not needed",
    )
    other = client.post(
        f"{API}/requests/{claim['request_id']}/claims",
        json={"quantity": 1},
        headers={**world.headers("responder", "thika"), "Idempotency-Key": "eta-2"},
    ).json()
    r = client.post(
        f"{API}/requests/{claim['request_id']}/cancel", headers=world.headers("manager", "nairobi")
    )
    assert r.status_code == 200, r.text
    got = client.get(f"{API}/claims/{other['id']}", headers=world.headers("responder", "thika"))
    assert (got.json()["status"], got.json()["end_reason"]) == (
        "declined",
        "the request was cancelled",
    )


def test_the_websocket_claim_status_op_takes_the_same_fields_and_refuses_the_same_way(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    claim = _accepted_claim(client, world)
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"op": "auth", "token": world.token("responder", "thika")}))
        assert ws.receive_json()["type"] == "welcome"

        def ask(message: dict[str, Any]) -> dict[str, Any]:
            ws.send_text(json.dumps({**message, "op": "claim_status", "ref": "q"}))
            while True:
                reply: dict[str, Any] = ws.receive_json()
                if reply.get("ref") == "q":
                    return reply

        past = ask({"claim_id": claim["id"], "status": "en_route", "eta": _iso(clock, -1)})
        assert (past["status"], past["detail"]) == (422, "eta must be in the future")
        unknown = ask({"claim_id": claim["id"], "status": "en_route", "crew": 3})
        assert unknown["status"] == 422
        done = ask(
            {
                "claim_id": claim["id"],
                "status": "en_route",
                "eta": _iso(clock, 20),
                "team_size": 3,
                "vehicle": "Pickup",
            }
        )
        assert done["status"] == 200, done
        assert (done["result"]["team_size"], done["result"]["vehicle"]) == (3, "Pickup")
        assert done["result"]["eta_at"] is not None


@pytest.mark.parametrize("name", ["team_lead", "vehicle", "contact"])
@pytest.mark.parametrize("poison", [b'"a\\u0000b"', b'"\\ud800"', b'"' + b"x" * 201 + b'"', b"7"])
def test_team_text_with_nul_a_lone_surrogate_or_not_text_is_422_and_nothing_moves(
    client: TestClient, world: World, clock: FakeClock, name: str, poison: bytes
) -> None:
    claim = _accepted_claim(client, world)
    body = json.dumps({"status": "en_route", "eta": _iso(clock, 30), name: "\x1f"}).encode()
    r = client.post(
        f"{API}/claims/{claim['id']}/status",
        content=body.replace(b'"\\u001f"', poison),
        headers={**world.headers("responder", "thika"), "Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert [i["loc"] for i in r.json()["detail"]] == [["body", name]]
    got = client.get(f"{API}/claims/{claim['id']}", headers=world.headers("responder", "thika"))
    assert got.json()["status"] == "accepted"


def test_team_text_at_its_limit_is_accepted(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    claim = _accepted_claim(client, world)
    body = {
        "status": "en_route",
        "eta": _iso(clock, 30),
        **{name: "x" * 200 for name in ("team_lead", "vehicle", "contact")},
        "team_size": 10_000,
    }
    r = _move(client, world, claim["id"], body)
    assert r.status_code == 200, r.text


def test_a_reason_over_500_characters_is_422_and_at_500_is_kept(
    client: TestClient, world: World
) -> None:
    claim = _accepted_claim(client, world)
    r = _move(client, world, claim["id"], {"status": "withdrawn", "reason": "x" * 501})
    assert r.status_code == 422, r.text
    assert [i["loc"] for i in r.json()["detail"]] == [["body", "reason"]]
    r = _move(client, world, claim["id"], {"status": "withdrawn", "reason": "é" * 500})
    assert r.status_code == 200, r.text
    assert r.json()["end_reason"] == "é" * 500
