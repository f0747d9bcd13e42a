"""A city's roster over HTTP on every backend: kept by its managers, read by its networks,
and claims made from its packages committing and giving back their units."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from tests.rosters.flows import (
    API,
    PUMP,
    add_package,
    claim,
    committed,
    declare,
    package,
    raise_request,
)
from tests.support import FakeClock, World


def test_a_manager_keeps_the_roster_and_its_networks_read_it(
    client: TestClient, world: World
) -> None:
    made = add_package(client, world, cap_percent=50)
    assert made["items"] == [
        {
            "resource": PUMP,
            "quantity": 6,
            "cap_quantity": 3,
            "committed_quantity": 0,
            "remaining_quantity": 3,
        }
    ]
    assert made["available_now"] is True and made["cost_currency"] == "KES"
    thika = world.city_ids["thika"]
    for role, city in [("observer", "nairobi"), ("responder", "machakos"), ("admin", None)]:
        r = client.get(f"{API}/cities/{thika}/roster", headers=world.headers(role, city))
        assert r.status_code == 200, (role, city, r.text)
        assert [p["id"] for p in r.json()["data"]] == [made["id"]]
        assert r.json()["count"] == 1
    r = client.get(f"{API}/cities/{thika}/roster", headers=world.headers("manager", "berlin"))
    assert r.status_code == 404
    assert r.json()["detail"] == f"city {thika} not found"

    r = client.patch(
        f"{API}/cities/{thika}/roster/{made['id']}",
        json={
            "items": [
                {"resource": PUMP, "quantity": 10},
                {"resource": "generator-100kw", "quantity": 2},
            ]
        },
        headers=world.headers("manager", "thika"),
    )
    assert r.status_code == 200, r.text
    assert [(i["resource"], i["quantity"], i["cap_quantity"]) for i in r.json()["items"]] == [
        ("generator-100kw", 2, 1),
        (PUMP, 10, 5),
    ]


def test_a_roster_is_paged(client: TestClient, world: World) -> None:
    ids = [add_package(client, world, name=f"Team {n}")["id"] for n in range(3)]
    thika = world.city_ids["thika"]
    r = client.get(
        f"{API}/cities/{thika}/roster",
        params={"limit": 2, "offset": 0},
        headers=world.headers("observer", "thika"),
    )
    page = r.json()
    assert [p["id"] for p in page["data"]] == ids[:2]
    assert page["count"] == 3 and page["next_offset"] == 2


def test_a_claim_from_a_package_commits_its_units_and_release_gives_them_back(
    client: TestClient, world: World
) -> None:
    pkg = add_package(client, world)
    request_id = raise_request(client, world, declare(client, world), quantity=4)

    r = claim(client, world, request_id, 3, "from-roster", package_id=pkg["id"])
    assert r.status_code == 201, r.text
    assert r.json()["package_id"] == pkg["id"]
    assert committed(client, world, pkg["id"]) == 3

    claim_id = r.json()["id"]
    manager = world.headers("manager", "nairobi")
    responder = world.headers("responder", "thika")
    for status, headers in [
        ("accepted", manager),
        ("en_route", responder),
        ("on_site", responder),
    ]:
        r = client.post(f"{API}/claims/{claim_id}/status", json={"status": status}, headers=headers)
        assert r.status_code == 200, r.text
        assert committed(client, world, pkg["id"]) == 3, status
    r = client.post(
        f"{API}/claims/{claim_id}/status", json={"status": "released"}, headers=responder
    )
    assert r.status_code == 200, r.text
    assert committed(client, world, pkg["id"]) == 0


def test_withdrawal_decline_and_cancel_each_give_the_units_back_once(
    client: TestClient, world: World
) -> None:
    pkg = add_package(client, world)
    incident_id = declare(client, world)
    manager = world.headers("manager", "nairobi")
    responder = world.headers("responder", "thika")
    for n, (status, headers) in enumerate([("withdrawn", responder), ("declined", manager)]):
        request_id = raise_request(client, world, incident_id, quantity=2)
        r = claim(client, world, request_id, 2, f"k{n}", package_id=pkg["id"])
        assert r.status_code == 201, r.text
        assert committed(client, world, pkg["id"]) == 2
        r = client.post(
            f"{API}/claims/{r.json()['id']}/status", json={"status": status}, headers=headers
        )
        assert r.status_code == 200, r.text
        assert committed(client, world, pkg["id"]) == 0, status
    request_id = raise_request(client, world, incident_id, quantity=2)
    assert claim(client, world, request_id, 1, "k-cancel", package_id=pkg["id"]).status_code == 201
    r = client.post(f"{API}/requests/{request_id}/cancel", headers=manager)
    assert r.status_code == 200, r.text
    assert committed(client, world, pkg["id"]) == 0
    events = client.get(f"{API}/incidents/{incident_id}/events", headers=manager).json()["data"]
    packaged = [
        e["data"]["package"]["committed_quantity"] for e in events if "package" in e["data"]
    ]
    assert packaged == [2, 0, 2, 0, 1, 0]


def test_an_expired_claim_gives_its_units_back(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    from service.commands.sweeps import expire_claim  # the sweeper's own step
    from service.domain.actors import SYSTEM

    pkg = add_package(client, world)
    request_id = raise_request(client, world, declare(client, world), quantity=2)
    r = claim(client, world, request_id, 2, "lapses", package_id=pkg["id"])
    assert r.status_code == 201
    clock.advance(timedelta(days=2))
    expired, _ = world.executor.run_sync(SYSTEM, expire_claim, r.json()["id"])
    assert expired is True
    assert committed(client, world, pkg["id"]) == 0


def test_the_cap_and_the_units_are_never_exceeded_across_incidents(
    client: TestClient, world: World
) -> None:
    pkg = add_package(client, world, cap_percent=50)  # 3 of 6 at once
    first = raise_request(client, world, declare(client, world, "Flood one"), quantity=4)
    second = raise_request(client, world, declare(client, world, "Flood two"), quantity=4)
    assert claim(client, world, first, 2, "a", package_id=pkg["id"]).status_code == 201
    over = claim(client, world, second, 2, "b", package_id=pkg["id"])
    assert over.status_code == 409
    assert "1 units left" in over.json()["detail"] and "cap" in over.json()["detail"]
    assert claim(client, world, second, 1, "c", package_id=pkg["id"]).status_code == 201
    assert committed(client, world, pkg["id"]) == 3
    # The refused claim left the request as it was.
    r = client.get(f"{API}/requests/{second}", headers=world.headers("observer", "thika"))
    assert r.json()["claimed_quantity"] == 1


def test_edits_never_drop_units_or_the_cap_below_what_is_committed(
    client: TestClient, world: World
) -> None:
    pkg = add_package(client, world)
    request_id = raise_request(client, world, declare(client, world), quantity=4)
    assert claim(client, world, request_id, 4, "four", package_id=pkg["id"]).status_code == 201
    path = f"{API}/cities/{world.city_ids['thika']}/roster/{pkg['id']}"
    manager = world.headers("manager", "thika")
    for body in (
        {"cap_percent": 50},
        {"items": [{"resource": PUMP, "quantity": 3}]},
        {"items": [{"resource": "generator-100kw", "quantity": 3}]},
    ):
        r = client.patch(path, json=body, headers=manager)
        assert r.status_code == 409, (body, r.text)
    assert client.delete(path, headers=manager).status_code == 409
    r = client.patch(path, json={"cap_percent": 70}, headers=manager)  # 6 * 70% = 4
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["cap_quantity"] == 4
    assert package(client, world, pkg["id"])["items"][0]["remaining_quantity"] == 0


def test_an_unavailable_package_and_another_citys_package_cannot_be_claimed_from(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    until = clock.now + timedelta(hours=6)
    pkg = add_package(
        client,
        world,
        available=False,
        unavailable_until=until.isoformat(),
        unavailable_reason="deployed at home",
    )
    assert pkg["available_now"] is False
    machakos = add_package(client, world, city="machakos")
    request_id = raise_request(client, world, declare(client, world), quantity=4)
    r = claim(client, world, request_id, 1, "busy", package_id=pkg["id"])
    assert r.status_code == 409
    assert "deployed at home" in r.json()["detail"]
    r = claim(client, world, request_id, 1, "theirs", package_id=machakos["id"])
    assert r.status_code == 404
    assert r.json()["detail"] == f"package {machakos['id']} not found"
    gen = raise_request(client, world, declare(client, world, "Power"), 1, "generator-100kw")
    clock.advance(timedelta(hours=7))
    r = claim(client, world, gen, 1, "no-gen", package_id=pkg["id"])
    assert r.status_code == 422
    assert "holds no generator-100kw" in r.json()["detail"]
    r = claim(client, world, request_id, 1, "later", package_id=pkg["id"])
    assert r.status_code == 201, r.text


def test_a_retried_claim_from_a_package_commits_once(client: TestClient, world: World) -> None:
    pkg = add_package(client, world)
    request_id = raise_request(client, world, declare(client, world), quantity=4)
    first = claim(client, world, request_id, 2, "same", package_id=pkg["id"])
    again = claim(client, world, request_id, 2, "same", package_id=pkg["id"])
    assert first.status_code == 201 and again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.json() == again.json()
    other = claim(client, world, request_id, 2, "same")  # same key, not from the package
    assert other.status_code in (409, 422)
    assert committed(client, world, pkg["id"]) == 2
