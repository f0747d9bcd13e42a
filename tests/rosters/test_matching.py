"""Who could help: the open requests' lenders, from the rosters of the cities they target,
for the requesting city, on every backend."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import col, select

from service.domain.rosters import Lender, available_now, who_could_help
from service.persistence.tables import AidRequest, PackageItem, RequestTarget, RosterPackage
from tests.rosters.flows import API, PUMP, add_package, claim, declare, raise_request
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
    # Ring 0 (Thika alone) now holds nothing for the 4 unclaimed pumps, so the request has
    # moved on to ring 1 at once (cover): Machakos and Mombasa are reached and hold 12.
    other = raise_request(client, world, declare(client, world, "Second flood"), quantity=6)
    assert claim(client, world, other, 6, "all-six", package_id=thika).status_code == 201
    page = client.get(f"{API}/incidents/{incident_id}/matches", headers=manager).json()
    assert page["count"] == 2
    pumps, gis = page["data"]
    assert [x["package_id"] for x in pumps["lenders"]] == [machakos, mombasa, augsburg]
    assert [x["reached"] for x in pumps["lenders"]] == [True, True, False]
    assert pumps["available_quantity"] == 12
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


def test_the_first_lenders_the_counts_and_the_units_are_the_rules_over_every_row(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    """Many packages (ties of readiness, one unavailable for a while, one with nothing left)
    and requests at several rings: each request's page is the rule applied to every
    package of every city it targets, on every backend."""
    resources = [PUMP, "generator-100kw", "water-tender"]
    cities = ["thika", "machakos", "mombasa", "munich", "augsburg", "berlin", "nairobi"]
    for n in range(21):
        city = cities[n % len(cities)]
        add_package(
            client,
            world,
            city,
            name=f"Package {n}",
            readiness_hours=n % 3,
            items=[
                {"resource": resources[n % 3], "quantity": 2 + n % 4},
                {"resource": resources[(n + 1) % 3], "quantity": 1},
            ],
            **(
                {
                    "available": False,
                    "unavailable_until": (clock.now + timedelta(hours=n - 10)).isoformat(),
                }
                if n % 5 == 0
                else {}
            ),
        )
    incident_id = declare(client, world)
    requests = [
        raise_request(client, world, incident_id, quantity=3, resource=resources[n % 3])
        for n in range(7)
    ]
    drained = raise_request(client, world, declare(client, world, "Second flood"), quantity=5)
    thika = client.get(
        f"{API}/cities/{world.city_ids['thika']}/roster",
        headers=world.headers("observer", "thika"),
    ).json()["data"][0]
    assert claim(client, world, drained, 2, "drain", package_id=thika["id"]).status_code == 201
    for request_id in requests[:3]:  # Thika passes: these reach ring 1 at once
        r = client.post(
            f"{API}/requests/{request_id}/passes",
            json={},
            headers=world.headers("manager", "thika"),
        )
        assert r.status_code == 201, r.text

    with world.executor.db.read() as session:
        now = clock.now
        packages = {p.id: p for p in session.exec(select(RosterPackage)).all()}
        items = session.exec(select(PackageItem)).all()
        expected: dict[int, tuple[list[int], int, int]] = {}
        for request_id in requests:
            request = session.get(AidRequest, request_id)
            assert request is not None
            targets = session.exec(
                select(RequestTarget).where(col(RequestTarget.request_id) == request_id)
            ).all()
            lenders = [
                Lender(
                    t.city_id,
                    t.ring,
                    t.distance_km,
                    p.id or 0,
                    p.name,
                    p.readiness_hours,
                    i.cap_quantity - i.committed_quantity,
                )
                for t in targets
                for i in items
                for p in (packages[i.package_id],)
                if p.city_id == t.city_id
                and i.resource == request.resource
                and available_now(p.available, p.unavailable_until, now)
            ]
            ranked = who_could_help(lenders)
            reached = sum(x.remaining_quantity for x in ranked if x.ring <= request.ring)
            expected[request_id] = ([x.package_id for x in ranked], len(ranked), reached)
    assert any(count > 3 for _, count, _ in expected.values())
    assert any(reached > 0 for _, _, reached in expected.values())

    manager = world.headers("manager", "nairobi")
    for top in (1, 3, 100):
        page = client.get(
            f"{API}/incidents/{incident_id}/matches", params={"lenders": top}, headers=manager
        ).json()
        assert [m["request_id"] for m in page["data"]] == requests
        for found in page["data"]:
            ids, count, reached = expected[found["request_id"]]
            assert [x["package_id"] for x in found["lenders"]] == ids[:top]
            assert found["lender_count"] == count and found["available_quantity"] == reached
        one = client.get(
            f"{API}/requests/{requests[0]}/matches", params={"lenders": top}, headers=manager
        ).json()
        assert [x["package_id"] for x in one["lenders"]] == expected[requests[0]][0][:top]
