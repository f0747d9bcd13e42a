"""Offers over HTTP on every backend: made by a peer city, answered by the requesting
manager, followed up by the offering city, expired by the sweeper."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from service.executor import Executor
from service.scheduler import Sweeper
from tests.support import FakeClock, World

API = "/api/v1"
PUMP = "high-capacity-pump"


def _declare(client: TestClient, world: World) -> int:
    r = client.post(
        f"{API}/incidents",
        json={"incident_type": "flood", "title": "Nairobi River flood"},
        headers=world.headers("manager", "nairobi"),
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _at(clock: FakeClock, **delta: float) -> str:
    return (clock.now + timedelta(**delta)).isoformat()


def _offer(
    client: TestClient,
    world: World,
    clock: FakeClock,
    incident_id: int,
    key: str,
    city: str = "thika",
    role: str = "responder",
    **body: Any,
) -> Any:
    return client.post(
        f"{API}/incidents/{incident_id}/offers",
        json={"resource": PUMP, "quantity": 3, "ready_at": _at(clock, hours=4), **body},
        headers={**world.headers(role, city), "Idempotency-Key": key},
    )


def _move(
    client: TestClient, world: World, offer_id: int, role: str, city: str, **body: Any
) -> Any:
    return client.post(
        f"{API}/offers/{offer_id}/status", json=body, headers=world.headers(role, city)
    )


def _events(client: TestClient, world: World, incident_id: int) -> list[dict[str, Any]]:
    r = client.get(
        f"{API}/incidents/{incident_id}/events?limit=500",
        headers=world.headers("manager", "nairobi"),
    )
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


def _package(client: TestClient, world: World, quantity: int = 6) -> int:
    r = client.post(
        f"{API}/cities/{world.city_ids['thika']}/roster",
        json={
            "name": "Pump strike team",
            "items": [{"resource": PUMP, "quantity": quantity}],
            "readiness_hours": 4,
            "self_sufficiency_days": 3,
        },
        headers=world.headers("manager", "thika"),
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_an_accepted_offer_becomes_a_request_and_an_accepted_claim_and_commits_package_units(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    incident_id = _declare(client, world)
    package_id = _package(client, world)
    made = _offer(client, world, clock, incident_id, "o1", note="Two crews", package_id=package_id)
    assert made.status_code == 201, made.text
    offer = made.json()
    assert offer["status"] == "open"
    assert offer["request_id"] is None
    assert datetime.fromisoformat(offer["expires_at"]) == clock.now + timedelta(hours=24)

    r = _move(client, world, offer["id"], "manager", "nairobi", status="accepted")
    assert r.status_code == 200, r.text
    accepted = r.json()
    assert accepted["status"] == "accepted"
    assert accepted["claim_id"] is not None and accepted["request_id"] is not None

    claim = client.get(
        f"{API}/claims/{accepted['claim_id']}", headers=world.headers("manager", "nairobi")
    ).json()
    assert (claim["status"], claim["quantity"], claim["city_id"]) == (
        "accepted",
        3,
        world.city_ids["thika"],
    )
    assert claim["package_id"] == package_id
    request = client.get(
        f"{API}/requests/{accepted['request_id']}", headers=world.headers("manager", "nairobi")
    ).json()
    assert (request["resource"], request["quantity"], request["claimed_quantity"]) == (PUMP, 3, 3)
    assert request["status"] == "claimed"
    roster = client.get(
        f"{API}/cities/{world.city_ids['thika']}/roster/{package_id}",
        headers=world.headers("manager", "thika"),
    ).json()
    assert roster["items"][0]["committed_quantity"] == 3
    assert roster["items"][0]["remaining_quantity"] == 3

    types = [e["type"] for e in _events(client, world, incident_id)]
    assert types == [
        "incident.declared",
        "offer.made",
        "request.raised",
        "claim.made",
        "claim.changed",
        "offer.accepted",
    ]


def test_an_offer_fills_an_existing_open_request_for_the_same_resource(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    incident_id = _declare(client, world)
    r = client.post(
        f"{API}/incidents/{incident_id}/requests",
        json={"resource": PUMP, "quantity": 5},
        headers=world.headers("manager", "nairobi"),
    )
    request_id = r.json()["id"]
    # Mombasa is reached only at ring 1; an offer needs no ring.
    offer = _offer(client, world, clock, incident_id, "o1", city="mombasa").json()
    r = _move(
        client, world, offer["id"], "manager", "nairobi", status="accepted", request_id=request_id
    )
    assert r.status_code == 200, r.text
    assert r.json()["request_id"] == request_id
    request = client.get(
        f"{API}/requests/{request_id}", headers=world.headers("manager", "nairobi")
    ).json()
    assert (request["claimed_quantity"], request["status"]) == (3, "partially_claimed")

    # Another city's offer for more than is left: 409, and nothing changes.
    other = _offer(client, world, clock, incident_id, "o2", request_id=request_id).json()
    assert other["request_id"] == request_id
    r = _move(client, world, other["id"], "manager", "nairobi", status="accepted")
    assert r.status_code == 409
    assert "only 2 left unclaimed" in r.json()["detail"]
    assert (
        client.get(
            f"{API}/offers/{other['id']}", headers=world.headers("manager", "nairobi")
        ).json()["status"]
        == "open"
    )


def test_a_request_that_fills_up_answers_its_open_offers(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    incident_id = _declare(client, world)
    request_id = client.post(
        f"{API}/incidents/{incident_id}/requests",
        json={"resource": PUMP, "quantity": 2},
        headers=world.headers("manager", "nairobi"),
    ).json()["id"]
    offer = _offer(
        client, world, clock, incident_id, "o1", city="mombasa", request_id=request_id
    ).json()
    r = client.post(
        f"{API}/requests/{request_id}/claims",
        json={"quantity": 2},
        headers={**world.headers("responder", "thika"), "Idempotency-Key": "c1"},
    )
    assert r.status_code == 201, r.text
    answered = client.get(
        f"{API}/offers/{offer['id']}", headers=world.headers("manager", "mombasa")
    ).json()
    assert answered["status"] == "declined"
    assert answered["end_reason"] == f"request {request_id} is fully claimed"
    assert _events(client, world, incident_id)[-1]["type"] == "offer.declined"


def test_a_counter_is_accepted_or_withdrawn_by_the_offering_city_on_the_counters_terms(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    incident_id = _declare(client, world)
    offer = _offer(client, world, clock, incident_id, "o1").json()
    later = _at(clock, hours=8)
    r = _move(
        client,
        world,
        offer["id"],
        "manager",
        "nairobi",
        status="countered",
        quantity=2,
        ready_at=later,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["counter_quantity"]) == ("countered", 2)
    # The requesting manager cannot accept its own counter; the offering city can.
    r = _move(client, world, offer["id"], "manager", "nairobi", status="accepted")
    assert r.status_code == 403
    assert "only the offering city" in r.json()["detail"]
    r = _move(client, world, offer["id"], "responder", "thika", status="accepted")
    assert r.status_code == 200, r.text
    claim = client.get(
        f"{API}/claims/{r.json()['claim_id']}", headers=world.headers("responder", "thika")
    ).json()
    assert (claim["quantity"], claim["status"]) == (2, "accepted")

    second = _offer(client, world, clock, incident_id, "o2").json()
    _move(client, world, second["id"], "manager", "nairobi", status="countered", quantity=1)
    r = _move(
        client, world, second["id"], "manager", "thika", status="withdrawn", reason="Sent home"
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["end_reason"]) == ("withdrawn", "Sent home")
    r = _move(client, world, second["id"], "responder", "thika", status="accepted")
    assert r.status_code == 409
    assert "already withdrawn" in r.json()["detail"]


def test_declining_needs_a_reason_and_moves_are_refused_with_useful_messages(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    incident_id = _declare(client, world)
    offer = _offer(client, world, clock, incident_id, "o1").json()
    r = _move(client, world, offer["id"], "manager", "nairobi", status="declined")
    assert r.status_code == 422
    assert "needs a reason" in r.json()["detail"]
    r = _move(client, world, offer["id"], "responder", "nairobi", status="declined", reason="x")
    assert r.status_code == 403
    r = _move(client, world, offer["id"], "observer", "nairobi", status="declined", reason="x")
    assert r.status_code == 403
    r = _move(client, world, offer["id"], "manager", "machakos", status="withdrawn")
    assert r.status_code == 403
    assert "another city's incident" in r.json()["detail"]
    r = _move(client, world, offer["id"], "manager", "berlin", status="withdrawn")
    assert r.status_code == 404
    assert r.json()["detail"] == f"offer {offer['id']} not found"
    r = _move(client, world, offer["id"], "manager", "nairobi", status="countered")
    assert r.status_code == 422
    r = _move(client, world, offer["id"], "manager", "nairobi", status="declined", reason="Enough")
    assert r.status_code == 200
    assert r.json()["end_reason"] == "Enough"


def test_making_an_offer_is_checked_and_a_retry_with_its_key_returns_the_first(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    incident_id = _declare(client, world)
    first = _offer(client, world, clock, incident_id, "same")
    again = _offer(client, world, clock, incident_id, "same")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    r = _offer(client, world, clock, incident_id, "same", quantity=4)
    assert r.status_code == 409
    assert "Idempotency-Key" in r.json()["detail"]

    own = _offer(client, world, clock, incident_id, "own", city="nairobi", role="manager")
    assert own.status_code == 403
    assert "its own incident" in own.json()["detail"]
    hidden = _offer(client, world, clock, incident_id, "far", city="berlin")
    assert hidden.status_code == 404
    observer = _offer(client, world, clock, incident_id, "obs", role="observer")
    assert observer.status_code == 403
    unknown = _offer(client, world, clock, incident_id, "u", resource="high-capacity-pumps")
    assert unknown.status_code == 422
    assert "did you mean" in unknown.json()["detail"]
    past = _offer(client, world, clock, incident_id, "p", expires_at=_at(clock, minutes=-1))
    assert past.status_code == 422
    zoneless = _offer(client, world, clock, incident_id, "z", ready_at="2026-02-12T12:00:00")
    assert zoneless.status_code == 422
    package_id = _package(client, world, quantity=2)
    too_many = _offer(client, world, clock, incident_id, "pk", package_id=package_id)
    assert too_many.status_code == 409
    assert "2 units left" in too_many.json()["detail"]
    alien = _offer(client, world, clock, incident_id, "pk2", city="mombasa", package_id=package_id)
    assert alien.status_code == 404
    zoned = _offer(client, world, clock, incident_id, "tz", ready_at="2026-02-12T15:00:00+03:00")
    assert zoned.status_code == 201
    assert zoned.json()["ready_at"].startswith("2026-02-12T12:00:00")

    page = client.get(
        f"{API}/incidents/{incident_id}/offers?limit=1",
        headers=world.headers("observer", "nairobi"),
    ).json()
    assert (page["count"], len(page["data"]), page["next_offset"]) == (2, 1, 1)
    assert page["data"][0]["id"] == zoned.json()["id"]
    r = client.get(
        f"{API}/incidents/{incident_id}/offers?status=accepted",
        headers=world.headers("manager", "nairobi"),
    )
    assert r.json()["count"] == 0
    r = client.get(
        f"{API}/incidents/{incident_id}/offers", headers=world.headers("manager", "berlin")
    )
    assert r.status_code == 404


def test_offers_nobody_answers_expire_once_and_a_countered_one_too(
    client: TestClient, world: World, clock: FakeClock, executor: Executor
) -> None:
    incident_id = _declare(client, world)
    short = _offer(
        client, world, clock, incident_id, "o1", expires_at=_at(clock, minutes=30)
    ).json()
    countered = _offer(
        client, world, clock, incident_id, "o2", expires_at=_at(clock, minutes=30)
    ).json()
    _move(client, world, countered["id"], "manager", "nairobi", status="countered", quantity=1)
    lasting = _offer(client, world, clock, incident_id, "o3").json()
    clock.advance(timedelta(minutes=29))
    assert asyncio.run(Sweeper(executor).sweep()).offers_expired == 0
    clock.advance(timedelta(minutes=1))
    r = _move(client, world, countered["id"], "responder", "thika", status="accepted")
    assert r.status_code == 409
    assert "expired at" in r.json()["detail"]
    assert asyncio.run(Sweeper(executor).sweep()).offers_expired == 2
    assert asyncio.run(Sweeper(executor).sweep()).offers_expired == 0
    headers = world.headers("manager", "nairobi")
    statuses = {
        o["id"]: o["status"]
        for o in client.get(f"{API}/incidents/{incident_id}/offers", headers=headers).json()["data"]
    }
    assert statuses == {short["id"]: "expired", countered["id"]: "expired", lasting["id"]: "open"}
    expired = [e for e in _events(client, world, incident_id) if e["type"] == "offer.expired"]
    assert sorted(e["data"]["offer"]["id"] for e in expired) == sorted(
        [short["id"], countered["id"]]
    )


def test_the_readme_walkthrough_offer_commits_the_packages_last_unit_under_its_cap(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    """As in the README: a cap of half of 6 pumps, 2 committed by a claim; an offer of 1
    from the package, countered with another time and accepted by Thika."""
    incident_id = _declare(client, world)
    thika = world.city_ids["thika"]
    package = client.post(
        f"{API}/cities/{thika}/roster",
        json={
            "name": "Flood pumping strike team",
            "items": [{"resource": PUMP, "quantity": 6}],
            "readiness_hours": 4,
            "self_sufficiency_days": 3,
            "cap_percent": 50,
        },
        headers=world.headers("manager", "thika"),
    ).json()
    request_id = client.post(
        f"{API}/incidents/{incident_id}/requests",
        json={"resource": PUMP, "quantity": 4},
        headers=world.headers("manager", "nairobi"),
    ).json()["id"]
    r = client.post(
        f"{API}/requests/{request_id}/claims",
        json={"quantity": 2, "package_id": package["id"]},
        headers={**world.headers("responder", "thika"), "Idempotency-Key": "roster-1"},
    )
    assert r.status_code == 201, r.text
    offer = _offer(
        client,
        world,
        clock,
        incident_id,
        "thika-offer-1",
        quantity=1,
        package_id=package["id"],
        ready_at=_at(clock, hours=2),
        note="Crew of two",
    ).json()
    r = _move(
        client,
        world,
        offer["id"],
        "manager",
        "nairobi",
        status="countered",
        ready_at=_at(clock, hours=1),
    )
    assert r.status_code == 200, r.text
    r = _move(client, world, offer["id"], "responder", "thika", status="accepted")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted"
    roster = client.get(
        f"{API}/cities/{thika}/roster/{package['id']}", headers=world.headers("manager", "nairobi")
    ).json()
    assert (roster["items"][0]["committed_quantity"], roster["items"][0]["remaining_quantity"]) == (
        3,
        0,
    )
    types = [e["type"] for e in _events(client, world, incident_id)][-6:]
    assert types == [
        "offer.made",
        "offer.countered",
        "request.raised",
        "claim.made",
        "claim.changed",
        "offer.accepted",
    ]
    # Nothing is left under the cap: a second offer from the package is refused at once.
    again = _offer(
        client, world, clock, incident_id, "thika-offer-2", quantity=1, package_id=package["id"]
    )
    assert again.status_code == 409
    assert "0 units left" in again.json()["detail"]


def test_a_cancelled_request_answers_the_open_offers_aimed_at_it(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    incident_id = _declare(client, world)
    request_id = client.post(
        f"{API}/incidents/{incident_id}/requests",
        json={"resource": PUMP, "quantity": 2},
        headers=world.headers("manager", "nairobi"),
    ).json()["id"]
    offer = _offer(client, world, clock, incident_id, "o1", request_id=request_id).json()
    r = client.post(
        f"{API}/requests/{request_id}/cancel", headers=world.headers("manager", "nairobi")
    )
    assert r.status_code == 200, r.text
    answered = client.get(
        f"{API}/offers/{offer['id']}", headers=world.headers("responder", "thika")
    ).json()
    assert (answered["status"], answered["end_reason"]) == (
        "declined",
        f"request {request_id} is cancelled",
    )
