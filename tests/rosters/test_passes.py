"""Passes: a targeted city passes on a request; when the whole current ring has passed,
the request escalates at once, exactly once per ring, also when passes and the
escalation sweeper race (on every backend)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import col, select

from service.commands import aid_requests, incidents, passes, sweeps
from service.commands.admin import create_city
from service.domain.actors import SYSTEM, Actor, Role
from service.domain.errors import Conflict, Forbidden
from service.domain.passes import ring_exhausted
from service.executor import Executor
from service.models import AidRequestCreate, CityCreate, IncidentCreate, PassCreate
from service.persistence.tables import AidRequest, Event
from service.scheduler import Sweeper
from tests.rosters.flows import API, declare, raise_request
from tests.support import FakeClock, World

WAIT_S = 30.0


def test_a_ring_is_exhausted_when_every_city_of_it_has_passed() -> None:
    rings = {1: 0, 2: 0, 3: 1}
    assert not ring_exhausted(rings, 0, [1])
    assert ring_exhausted(rings, 0, [1, 2])
    assert not ring_exhausted(rings, 1, [1, 2])  # ring 1's own city has not
    assert ring_exhausted(rings, 1, [3])  # the inner ring had its turn
    assert not ring_exhausted(rings, 2, [1, 2, 3])  # a ring of nobody is never exhausted


def test_a_pass_is_recorded_once_and_the_last_of_a_ring_escalates_at_once(
    client: TestClient, world: World
) -> None:
    incident_id = declare(client, world)
    request_id = raise_request(client, world, incident_id)
    thika = world.headers("responder", "thika")
    r = client.post(
        f"{API}/requests/{request_id}/passes", json={"reason": "pumps deployed"}, headers=thika
    )
    assert r.status_code == 201, r.text
    # Thika is ring 0's only city: its pass moves the request to ring 1 without waiting.
    assert r.json()["reason"] == "pumps deployed" and r.json()["escalated_to_ring"] == 1
    again = client.post(f"{API}/requests/{request_id}/passes", json={}, headers=thika)
    assert again.status_code == 409
    manager = world.headers("manager", "nairobi")
    request = client.get(f"{API}/requests/{request_id}", headers=manager).json()
    assert request["ring"] == 1
    events = client.get(f"{API}/incidents/{incident_id}/events", headers=manager).json()["data"]
    assert [e["type"] for e in events][-2:] == ["request.passed", "request.escalated"]
    assert events[-1]["data"]["cause"] == "passes"
    listed = client.get(f"{API}/requests/{request_id}/passes", headers=manager).json()
    assert [(p["city_id"], p["ring"]) for p in listed["data"]] == [(world.city_ids["thika"], 0)]

    # Ring 1 holds Machakos, Mombasa and Munich: two passes leave it where it is.
    for city in ("machakos", "mombasa"):
        r = client.post(
            f"{API}/requests/{request_id}/passes", json={}, headers=world.headers("manager", city)
        )
        assert r.status_code == 201 and r.json()["escalated_to_ring"] is None
    r = client.post(
        f"{API}/requests/{request_id}/passes", json={}, headers=world.headers("responder", "munich")
    )
    assert r.json()["escalated_to_ring"] == 2


def test_who_may_not_pass(client: TestClient, world: World) -> None:
    request_id = raise_request(client, world, declare(client, world))
    url = f"{API}/requests/{request_id}/passes"
    assert client.post(url, json={}, headers=world.headers("manager", "nairobi")).status_code == 403
    assert (
        client.post(url, json={}, headers=world.headers("responder", "machakos")).status_code == 403
    )
    assert client.post(url, json={}, headers=world.headers("observer", "thika")).status_code == 403
    hidden = client.post(url, json={}, headers=world.headers("responder", "berlin"))
    assert (
        hidden.status_code == 404 and hidden.json()["detail"] == f"request {request_id} not found"
    )
    r = client.post(url, json={"reason": "x" * 501}, headers=world.headers("responder", "thika"))
    assert r.status_code == 422
    r = client.post(url, json={"ring": 2}, headers=world.headers("responder", "thika"))
    assert r.status_code == 422
    manager = world.headers("manager", "nairobi")
    assert client.post(f"{API}/requests/{request_id}/cancel", headers=manager).status_code == 200
    assert client.post(url, json={}, headers=world.headers("responder", "thika")).status_code == 409


NEARBY = {
    "kiambu": ("Kiambu", -1.1714, 36.8356),
    "ruiru": ("Ruiru", -1.1466, 36.9609),
    "kikuyu": ("Kikuyu", -1.2463, 36.6629),
    "limuru": ("Limuru", -1.1136, 36.6421),
    "ngong": ("Ngong", -1.3527, 36.6699),
}
TRIALS = 30


def _escalations(executor: Executor, incident_id: int) -> list[tuple[int, int]]:
    with executor.db.read() as session:
        rows = session.exec(
            select(Event).where(
                col(Event.incident_id) == incident_id, col(Event.type) == "request.escalated"
            )
        ).all()
    return [(e.data["request"]["id"], e.data["from_ring"]) for e in rows]


def test_passes_racing_the_sweeper_escalate_each_ring_exactly_once(
    executor: Executor, world: World, clock: FakeClock
) -> None:
    for slug, (name, lat, lon) in NEARBY.items():
        body = CityCreate(slug=slug, name=name, country="KE", lat=lat, lon=lon, networks=["kenya"])
        city, _ = executor.run_sync(SYSTEM, create_city, body)
        world.city_ids[slug] = city.id
    ring0 = ["thika", *NEARBY]
    nairobi = Actor(Role.MANAGER, world.city_ids["nairobi"], None)
    incident, _ = executor.run_sync(
        nairobi, incidents.declare_incident, IncidentCreate(incident_type="flood", title="F")
    )
    problems: list[str] = []
    with ThreadPoolExecutor(max_workers=len(ring0) + 2) as pool:
        for trial in range(TRIALS):
            body = AidRequestCreate(resource="high-capacity-pump", quantity=2)
            request, _ = executor.run_sync(nairobi, aid_requests.raise_request, incident.id, body)
            if trial % 2:
                clock.advance(timedelta(minutes=31))  # the timer is due too: the sweep races
            start = threading.Barrier(len(ring0) + 1)

            def passing(
                city: str, request_id: int = request.id, start: threading.Barrier = start
            ) -> str:
                actor = Actor(Role.RESPONDER, world.city_ids[city], None)
                start.wait(timeout=WAIT_S)
                try:
                    executor.run_sync(actor, passes.pass_request, request_id, PassCreate())
                except (Conflict, Forbidden) as exc:  # the ring moved on: 409 or not aimed
                    return f"refused: {exc}"
                return "ok"

            def sweeping(start: threading.Barrier = start) -> str:
                start.wait(timeout=WAIT_S)
                asyncio.run(Sweeper(executor).sweep())
                return "swept"

            futures = [pool.submit(passing, city) for city in ring0] + [pool.submit(sweeping)]
            outcomes = [f.result(timeout=WAIT_S * 2) for f in futures]
            problems += [o for o in outcomes if o not in ("ok", "swept")]
            with executor.db.read() as session:
                ring = session.get(AidRequest, request.id).ring  # type: ignore[union-attr]
            if ring != 1:
                problems.append(f"trial {trial}: ring {ring}")
    escalations = _escalations(executor, incident.id)
    print(f"pass-driven escalation: {TRIALS} requests, {len(escalations)} escalations")
    assert problems == []
    assert len(escalations) == len(set(escalations))  # each (request, ring) entered once
    # Every request left ring 0 once; older ones may since have timed out of ring 1.
    assert len([r for r, ring in escalations if ring == 0]) == TRIALS
    assert sweeps.LAST_RING == 2
