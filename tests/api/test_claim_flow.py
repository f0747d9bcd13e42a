"""The walkthrough of the README, end to end over HTTP, on every backend."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support import World


def _declare(client: TestClient, world: World, **extra: object) -> int:
    body = {"incident_type": "flood", "title": "Nairobi River flood", **extra}
    r = client.post("/api/v1/incidents", json=body, headers=world.headers("manager", "nairobi"))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _raise(client: TestClient, world: World, incident_id: int, **body: object) -> dict[str, object]:
    r = client.post(
        f"/api/v1/incidents/{incident_id}/requests",
        json={"resource": "high-capacity-pump", "quantity": 4, **body},
        headers=world.headers("manager", "nairobi"),
    )
    assert r.status_code == 201, r.text
    data: dict[str, object] = r.json()
    return data


def _claim(
    client: TestClient, world: World, request_id: object, qty: int, key: str, city: str = "thika"
):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/requests/{request_id}/claims",
        json={"quantity": qty},
        headers={**world.headers("responder", city), "Idempotency-Key": key},
    )


def test_claims_fill_a_request_and_the_second_claimer_gets_409_when_not_enough_remains(
    client: TestClient, world: World
) -> None:
    incident_id = _declare(client, world)
    request = _raise(client, world, incident_id)

    first = _claim(client, world, request["id"], 3, "k1")
    assert first.status_code == 201, first.text
    too_many = _claim(client, world, request["id"], 2, "k2")
    assert too_many.status_code == 409
    assert "only 1 left" in too_many.json()["detail"]
    last = _claim(client, world, request["id"], 1, "k3")
    assert last.status_code == 201

    r = client.get(f"/api/v1/requests/{request['id']}", headers=world.headers("observer", "thika"))
    assert r.json()["claimed_quantity"] == 4
    assert r.json()["status"] == "claimed"

    events = client.get(
        f"/api/v1/incidents/{incident_id}/events", headers=world.headers("manager", "nairobi")
    ).json()
    assert [e["type"] for e in events["data"]] == [
        "incident.declared",
        "request.raised",
        "claim.made",
        "claim.made",
    ]
    assert [e["seq"] for e in events["data"]] == [1, 2, 3, 4]
    assert events["next_after"] is None


def test_retried_claim_with_same_key_returns_the_first_claim_and_claims_nothing_more(
    client: TestClient, world: World
) -> None:
    request = _raise(client, world, _declare(client, world))
    first = _claim(client, world, request["id"], 2, "same")
    again = _claim(client, world, request["id"], 2, "same")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    r = client.get(f"/api/v1/requests/{request['id']}", headers=world.headers("observer", "thika"))
    assert r.json()["claimed_quantity"] == 2


def test_same_key_with_a_different_body_is_refused_without_effect(
    client: TestClient, world: World
) -> None:
    request = _raise(client, world, _declare(client, world))
    assert _claim(client, world, request["id"], 1, "k").status_code == 201
    other = _claim(client, world, request["id"], 3, "k")
    assert other.status_code == 409
    assert "Idempotency-Key" in other.json()["detail"]
    r = client.get(f"/api/v1/requests/{request['id']}", headers=world.headers("observer", "thika"))
    assert r.json()["claimed_quantity"] == 1


def test_claim_lifecycle_to_fulfilled_and_early_end_gives_quantity_back(
    client: TestClient, world: World
) -> None:
    request = _raise(client, world, _declare(client, world), quantity=2)
    manager = world.headers("manager", "nairobi")
    thika = world.headers("responder", "thika")
    a = _claim(client, world, request["id"], 1, "a").json()
    b = _claim(client, world, request["id"], 1, "b").json()

    def move(claim_id: object, status: str, headers: dict[str, str]) -> dict[str, object]:
        r = client.post(
            f"/api/v1/claims/{claim_id}/status", json={"status": status}, headers=headers
        )
        assert r.status_code == 200, r.text
        data: dict[str, object] = r.json()
        return data

    move(b["id"], "withdrawn", thika)
    r = client.get(f"/api/v1/requests/{request['id']}", headers=manager).json()
    assert (r["claimed_quantity"], r["status"]) == (1, "partially_claimed")

    c = _claim(client, world, request["id"], 1, "c").json()
    for claim in (a, c):
        move(claim["id"], "accepted", manager)
        move(claim["id"], "en_route", thika)
        move(claim["id"], "on_site", thika)
    r = client.get(f"/api/v1/requests/{request['id']}", headers=manager).json()
    assert (r["delivered_quantity"], r["status"]) == (2, "fulfilled")
    move(a["id"], "released", thika)


def test_illegal_transition_is_409_naming_both_states(client: TestClient, world: World) -> None:
    request = _raise(client, world, _declare(client, world))
    claim = _claim(client, world, request["id"], 1, "a").json()
    r = client.post(
        f"/api/v1/claims/{claim['id']}/status",
        json={"status": "on_site"},
        headers=world.headers("responder", "thika"),
    )
    assert r.status_code == 409
    assert "'claimed'" in r.json()["detail"] and "'on_site'" in r.json()["detail"]


def test_information_request_is_answered_by_releasing_the_claim(
    client: TestClient, world: World
) -> None:
    request = _raise(
        client, world, _declare(client, world), resource="hydrological-forecast", quantity=1
    )
    assert request["kind"] == "information"
    claim = _claim(client, world, request["id"], 1, "a").json()
    client.post(
        f"/api/v1/claims/{claim['id']}/status",
        json={"status": "accepted"},
        headers=world.headers("manager", "nairobi"),
    )
    r = client.post(
        f"/api/v1/claims/{claim['id']}/status",
        json={"status": "released", "answer": "Peak at Athi River gauge 3.2 m by 18:00 UTC"},
        headers=world.headers("responder", "thika"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["answer"].startswith("Peak")
    req = client.get(
        f"/api/v1/requests/{request['id']}", headers=world.headers("manager", "nairobi")
    )
    assert req.json()["status"] == "fulfilled"


def test_closing_an_incident_cancels_open_requests_and_refuses_new_claims(
    client: TestClient, world: World
) -> None:
    incident_id = _declare(client, world)
    request = _raise(client, world, incident_id)
    claim = _claim(client, world, request["id"], 1, "a").json()
    r = client.post(
        f"/api/v1/incidents/{incident_id}/close", headers=world.headers("manager", "nairobi")
    )
    assert r.status_code == 200 and r.json()["status"] == "closed"
    req = client.get(
        f"/api/v1/requests/{request['id']}", headers=world.headers("manager", "nairobi")
    ).json()
    assert (req["status"], req["claimed_quantity"]) == ("cancelled", 0)
    got = client.get(
        f"/api/v1/claims/{claim['id']}", headers=world.headers("responder", "thika")
    ).json()
    assert got["status"] == "declined"
    assert _claim(client, world, request["id"], 1, "b").status_code == 409
    again = client.post(
        f"/api/v1/incidents/{incident_id}/close", headers=world.headers("manager", "nairobi")
    )
    assert again.status_code == 409


def test_declaring_from_a_playbook_raises_its_requests_in_the_same_transaction(
    client: TestClient, world: World
) -> None:
    r = client.post(
        "/api/v1/incidents",
        json={"incident_type": "flood", "title": "Flood", "playbook": "flood"},
        headers=world.headers("manager", "nairobi"),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert len(body["requests"]) >= 4
    assert body["last_seq"] == 1 + len(body["requests"])


def test_inbox_lists_only_requests_aimed_at_the_city_at_its_current_ring(
    client: TestClient, world: World
) -> None:
    request = _raise(client, world, _declare(client, world))

    def inbox(city: str) -> list[object]:
        r = client.get("/api/v1/requests", headers=world.headers("responder", city))
        assert r.status_code == 200
        return [x["id"] for x in r.json()["data"]]

    assert inbox("thika") == [request["id"]]
    assert inbox("machakos") == []  # ring 1: not yet
    assert inbox("munich") == []  # ring 1 through the alliance network
    assert inbox("augsburg") == []  # ring 2
    assert _claim(client, world, request["id"], 1, "m", city="machakos").status_code == 403
    assert _claim(client, world, request["id"], 1, "b", city="berlin").status_code == 404


def test_claiming_city_asking_for_the_managers_move_is_403(
    client: TestClient, world: World
) -> None:
    request = _raise(client, world, _declare(client, world))
    claim = _claim(client, world, request["id"], 1, "a").json()
    r = client.post(
        f"/api/v1/claims/{claim['id']}/status",
        json={"status": "accepted"},
        headers=world.headers("responder", "thika"),
    )
    assert r.status_code == 403
    assert "only the requesting city's manager" in r.json()["detail"]
