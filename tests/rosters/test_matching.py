"""Who could help: the open requests' lenders, from the rosters of the cities they target,
for the requesting city, on every backend."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from service.domain.rosters import Lender, who_could_help
from tests.rosters.flows import API, add_package, claim, declare, raise_request
from tests.support import FakeClock, World


def test_lenders_rank_by_ring_then_distance_then_readiness_and_need_units_left() -> None:
    lenders = [
        Lender(1, 1, 10.0, 11, "a", 8, 2),
        Lender(2, 0, 90.0, 12, "b", 8, 1),
        Lender(3, 1, 10.0, 13, "c", 2, 5),
        Lender(4, 0, 20.0, 14, "d", 1, 0),  # nothing left under its cap
        Lender(5, 1, 5.0, 15, "e", 24, 1),
    ]
    assert [x.package_id for x in who_could_help(lenders)] == [12, 15, 13, 11]


def test_the_requesting_city_sees_who_could_help_in_ring_order(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    thika = add_package(client, world, "thika", readiness_hours=4)["id"]
    machakos = add_package(client, world, "machakos", readiness_hours=1)["id"]
    mombasa = add_package(client, world, "mombasa", readiness_hours=1)["id"]
    augsburg = add_package(client, world, "augsburg")["id"]
    add_package(
        client,
        world,
        "munich",
        available=False,
        unavailable_until=(clock.now + timedelta(days=1)).isoformat(),
    )
    add_package(client, world, "berlin")  # no network reaches it from Nairobi
    add_package(client, world, "nairobi")  # its own
    incident_id = declare(client, world)
    request_id = raise_request(client, world, incident_id, quantity=4)
    raise_request(client, world, incident_id, quantity=1, resource="gis-analyst")

    manager = world.headers("manager", "nairobi")
    r = client.get(f"{API}/requests/{request_id}/matches", headers=manager)
    assert r.status_code == 200, r.text
    found = r.json()
    assert [x["package_id"] for x in found["lenders"]] == [thika, machakos, mombasa, augsburg]
    assert [x["ring"] for x in found["lenders"]] == [0, 1, 1, 2]
    assert [x["reached"] for x in found["lenders"]] == [True, False, False, False]
    assert found["remaining_quantity"] == 4 and found["available_quantity"] == 6
    assert found["lender_count"] == 4
    first = client.get(
        f"{API}/requests/{request_id}/matches", params={"lenders": 2}, headers=manager
    ).json()
    assert [x["package_id"] for x in first["lenders"]] == [thika, machakos]
    assert first["lender_count"] == 4 and first["available_quantity"] == 6

    # Thika commits all 6 elsewhere: it can no longer help; the next incident's page shows it.
    other = raise_request(client, world, declare(client, world, "Second flood"), quantity=6)
    assert claim(client, world, other, 6, "all-six", package_id=thika).status_code == 201
    page = client.get(f"{API}/incidents/{incident_id}/matches", headers=manager).json()
    assert page["count"] == 2
    pumps, gis = page["data"]
    assert [x["package_id"] for x in pumps["lenders"]] == [machakos, mombasa, augsburg]
    assert pumps["available_quantity"] == 0
    assert gis["lenders"] == []


def test_who_could_help_is_for_the_requesting_city_only(client: TestClient, world: World) -> None:
    request_id = raise_request(client, world, declare(client, world))
    for role, city in [("observer", "nairobi"), ("responder", "nairobi"), ("admin", None)]:
        r = client.get(f"{API}/requests/{request_id}/matches", headers=world.headers(role, city))
        assert r.status_code == 200, (role, r.text)
    r = client.get(
        f"{API}/requests/{request_id}/matches", headers=world.headers("manager", "thika")
    )
    assert r.status_code == 403
    r = client.get(
        f"{API}/requests/{request_id}/matches", headers=world.headers("manager", "berlin")
    )
    assert r.status_code == 404 and r.json()["detail"] == f"request {request_id} not found"
