"""Ring cover: a request moves on at once when every city of its current ring keeps a
roster and what they hold available cannot cover what is still unclaimed; each ring is
entered once, also when roster changes race on two replicas."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from service.commands.admin import create_city
from service.domain.actors import SYSTEM
from service.domain.passes import ring_cannot_cover
from service.executor import Executor
from service.models import CityCreate
from service.persistence.tables import AidRequest, Event
from tests.replicas import Cluster, cluster_fixture
from tests.rosters.flows import API, PUMP, add_package, claim, declare, raise_request
from tests.support import World

WAIT_S = 30.0


def test_a_ring_cannot_cover_only_when_every_city_of_it_keeps_a_roster() -> None:
    rings = {1: 0, 2: 0, 3: 1}
    assert ring_cannot_cover(rings, 0, [], {1: 1, 2: 2}, 4)
    assert not ring_cannot_cover(rings, 0, [], {1: 1, 2: 3}, 4)  # 4 cover 4
    assert not ring_cannot_cover(rings, 0, [], {1: 0}, 4)  # city 2 says nothing
    assert ring_cannot_cover(rings, 0, [2], {1: 3, 2: 9}, 4)  # city 2 passed: its 9 do not count
    assert ring_cannot_cover(rings, 0, [1, 2], {}, 1)  # all passed
    assert not ring_cannot_cover(rings, 0, [], {1: 0, 2: 0}, 0)  # nothing left to claim
    assert ring_cannot_cover(rings, 1, [], {3: 0}, 1)  # the inner ring had its turn
    assert not ring_cannot_cover(rings, 2, [], {1: 0, 2: 0, 3: 0}, 1)  # a ring of nobody


def _escalations(executor: Executor, incident_id: int) -> list[tuple[int, int, int, str]]:
    with executor.db.read() as session:
        rows = session.exec(
            select(Event)
            .where(col(Event.incident_id) == incident_id, col(Event.type) == "request.escalated")
            .order_by(col(Event.seq))
        ).all()
    return [
        (e.data["request"]["id"], e.data["from_ring"], e.data["to_ring"], e.data["cause"])
        for e in rows
    ]


def _ring(executor: Executor, request_id: int) -> int:
    with executor.db.read() as session:
        request = session.get(AidRequest, request_id)
        assert request is not None
        return request.ring


def _update(client: TestClient, world: World, city: str, package_id: int, **body: Any) -> None:
    r = client.patch(
        f"{API}/cities/{world.city_ids[city]}/roster/{package_id}",
        json=body,
        headers=world.headers("manager", city),
    )
    assert r.status_code == 200, r.text


def test_a_request_moves_on_when_its_rings_rosters_cannot_cover_it(
    client: TestClient, world: World
) -> None:
    # Ring 0 is Thika; ring 1 Machakos, Mombasa and Munich; ring 2 Augsburg.
    thika = add_package(client, world, "thika", items=[{"resource": PUMP, "quantity": 2}])["id"]
    machakos = add_package(client, world, "machakos")["id"]  # 6 pumps
    incident_id = declare(client, world)

    four = raise_request(client, world, incident_id, quantity=4)
    two = raise_request(client, world, incident_id, quantity=2)
    # Thika's 2 cannot cover 4: ring 1 at once. Mombasa and Munich keep no roster, so
    # ring 1 says nothing of what it holds and the request waits there.
    assert _escalations(world.executor, incident_id) == [(four, 0, 1, "cover")]
    assert _ring(world.executor, four) == 1 and _ring(world.executor, two) == 0

    # Thika's package goes away for a while: ring 0 holds nothing for the 2 pumps.
    _update(client, world, "thika", thika, available=False, unavailable_reason="repairs")
    assert _escalations(world.executor, incident_id)[1:] == [(two, 0, 1, "cover")]

    # Mombasa and Munich keep rosters of generators: ring 1 holds Machakos' 6 pumps,
    # enough for each of the two requests on its own, so both stay.
    for city in ("mombasa", "munich"):
        add_package(client, world, city, items=[{"resource": "generator-100kw", "quantity": 1}])
    assert len(_escalations(world.executor, incident_id)) == 2

    # Machakos cuts its pumps to 3: the 4 move on to ring 2, the 2 stay.
    _update(client, world, "machakos", machakos, items=[{"resource": PUMP, "quantity": 3}])
    assert _escalations(world.executor, incident_id)[2:] == [(four, 1, 2, "cover")]
    assert _ring(world.executor, two) == 1

    # Machakos commits 2 of its 3 to the 2-pump request, claimed in full: nothing open is
    # left in ring 1 to move.
    r = claim(client, world, two, 2, "two", package_id=machakos, city="machakos")
    assert r.status_code == 201, r.text
    assert len(_escalations(world.executor, incident_id)) == 3

    # A second incident's request of 2 in ring 1 now finds 1 pump there: it moves on.
    other_incident = declare(client, world, "Second flood")
    other = raise_request(client, world, other_incident, quantity=2)
    # Ring 0 (Thika) is unavailable: on to ring 1, which holds Machakos' last pump: ring 2.
    assert _escalations(world.executor, other_incident) == [
        (other, 0, 1, "cover"),
        (other, 1, 2, "cover"),
    ]
    # Each (request, ring) was entered once.
    moves = _escalations(world.executor, incident_id) + _escalations(world.executor, other_incident)
    assert len({(r, to) for r, _, to, _ in moves}) == len(moves)


def test_a_pass_takes_the_passing_citys_units_out_of_the_cover(
    client: TestClient, world: World
) -> None:
    for city in ("thika", "machakos"):
        add_package(client, world, city)  # 6 pumps each
    for city in ("mombasa", "munich"):
        add_package(client, world, city, items=[{"resource": "generator-100kw", "quantity": 1}])
    incident_id = declare(client, world)
    request_id = raise_request(client, world, incident_id, quantity=4)
    assert _ring(world.executor, request_id) == 0

    def passing(city: str) -> Any:
        r = client.post(
            f"{API}/requests/{request_id}/passes", json={}, headers=world.headers("manager", city)
        )
        assert r.status_code == 201, r.text
        return r.json()["escalated_to_ring"]

    # Thika, ring 0's only city, passes; ring 1 holds Machakos' 6 pumps: it stays there.
    assert passing("thika") == 1
    # Machakos passes too: Mombasa and Munich have not, but hold no pump: on to ring 2.
    assert passing("machakos") == 2
    assert _escalations(world.executor, incident_id) == [
        (request_id, 0, 1, "passes"),
        (request_id, 1, 2, "cover"),
    ]


# -- two replicas over PostgreSQL --------------------------------------------------------

cluster = cluster_fixture(replicas=2)

NEARBY = {
    "kiambu": ("Kiambu", -1.1714, 36.8356),
    "ruiru": ("Ruiru", -1.1466, 36.9609),
    "kikuyu": ("Kikuyu", -1.2463, 36.6629),
    "limuru": ("Limuru", -1.1136, 36.6421),
    "ngong": ("Ngong", -1.3527, 36.6699),
}
TRIALS = 6


@pytest.mark.slow
@pytest.mark.postgres
def test_roster_changes_racing_on_two_replicas_move_a_request_once_per_ring(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Six cities of ring 0 hold one pump each for a request of six; all six mark their
    package unavailable at once, half through each replica: the request leaves ring 0
    exactly once, and ring 1 (no rosters) holds it."""
    executor = cluster.executor
    for slug, (name, lat, lon) in NEARBY.items():
        body = CityCreate(slug=slug, name=name, country="KE", lat=lat, lon=lon, networks=["kenya"])
        if slug not in cluster.city:
            city, _ = executor.run_sync(SYSTEM, create_city, body)
            cluster.city[slug] = city.id or 0
    ring0 = ["thika", *NEARBY]
    urls = [r.url for r in cluster.replicas]
    problems: list[str] = []
    with (
        httpx.Client(timeout=WAIT_S) as http,
        ThreadPoolExecutor(max_workers=len(ring0)) as pool,
    ):
        r = http.post(
            f"{urls[0]}/api/v1/incidents",
            json={"incident_type": "flood", "title": "Cover race"},
            headers=cluster.headers("manager", "nairobi"),
        )
        assert r.status_code == 201, r.text
        incident_id = r.json()["id"]
        for trial in range(TRIALS):
            packages: dict[str, int] = {}
            for city in ring0:
                r = http.post(
                    f"{urls[0]}/api/v1/cities/{cluster.city[city]}/roster",
                    json={
                        "name": f"Pump {trial}",
                        "items": [{"resource": PUMP, "quantity": 1}],
                        "readiness_hours": 1,
                        "self_sufficiency_days": 1,
                    },
                    headers=cluster.headers("manager", city),
                )
                assert r.status_code == 201, r.text
                packages[city] = r.json()["id"]
            r = http.post(
                f"{urls[1]}/api/v1/incidents/{incident_id}/requests",
                json={"resource": PUMP, "quantity": len(ring0)},
                headers=cluster.headers("manager", "nairobi"),
            )
            assert r.status_code == 201, r.text
            request_id = r.json()["id"]
            assert r.json()["ring"] == 0  # six pumps cover six
            start = threading.Barrier(len(ring0))

            def away(
                n: int,
                city: str,
                start: threading.Barrier = start,
                packages: dict[str, int] = packages,
            ) -> str:
                url = f"{urls[n % 2]}/api/v1/cities/{cluster.city[city]}/roster/{packages[city]}"
                start.wait(timeout=WAIT_S)
                r = http.patch(
                    url,
                    json={"available": False, "unavailable_reason": "deployed"},
                    headers=cluster.headers("manager", city),
                )
                return "ok" if r.status_code == 200 else f"{r.status_code}: {r.text[:200]}"

            outcomes = [f.result() for f in [pool.submit(away, n, c) for n, c in enumerate(ring0)]]
            problems += [o for o in outcomes if o != "ok"]
            ring = _ring(executor, request_id)
            if ring != 1:
                problems.append(f"trial {trial}: ring {ring}")
    moves = _escalations(executor, incident_id)
    print(f"cover on two replicas: {TRIALS} requests, {len(moves)} escalations")
    assert problems == [], cluster.logs()
    assert sorted((to, cause) for _, _, to, cause in moves) == [(1, "cover")] * TRIALS
    assert len({r for r, _, _, _ in moves}) == TRIALS
