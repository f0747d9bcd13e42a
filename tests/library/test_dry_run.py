"""Dry runs write nothing, and say exactly what a declaration made right after does."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlmodel import SQLModel

from service.persistence import tables  # noqa: F401 (registers every table in the metadata)
from tests.library.support import API, SMALL_FLOOD, publish, upload
from tests.support import World


def _everything(world: World) -> dict[str, list[str]]:
    with world.executor.db.engine.connect() as conn:
        return {
            table.name: sorted(repr(tuple(row)) for row in conn.execute(select(table)))
            for table in SQLModel.metadata.sorted_tables
        }


def _targets(world: World, incident_id: int) -> dict[int, tuple[int, float]]:
    """Every city the incident's requests reach, with its ring and distance (the same for
    every request of a declaration)."""
    with world.executor.db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT DISTINCT t.city_id, t.ring, t.distance_km FROM request_targets t "
                "JOIN aid_requests r ON r.id = t.request_id WHERE r.incident_id = :i"
            ),
            {"i": incident_id},
        ).all()
    return {city_id: (ring, distance) for city_id, ring, distance in rows}


def _planned_targets(preview: dict[str, Any]) -> dict[int, tuple[int, float]]:
    return {
        c["city_id"]: (ring["ring"], c["distance_km"])
        for ring in preview["rings"]
        for c in ring["cities"]
    }


def test_a_dry_run_writes_nothing_and_agrees_with_the_declaration_after_it(
    client: TestClient, world: World
) -> None:
    manager = world.headers("manager", "nairobi")
    # Used once first: a token's first use is recorded (then at most once a minute).
    assert client.get(f"{API}/me", headers=manager).status_code == 200
    body = {"incident_type": "flood", "title": "Flood", "playbook": "flood"}
    before = _everything(world)

    r = client.post(f"{API}/incidents/dry-run", json=body, headers=manager)

    assert r.status_code == 200, r.text
    assert _everything(world) == before  # rows, counters and the event log alike
    preview = r.json()
    declared = client.post(f"{API}/incidents", json=body, headers=manager).json()
    raised = [
        {k: q[k] for k in ("resource", "kind", "quantity", "priority", "needed_by", "notes")}
        for q in declared["requests"]
    ]
    planned = [
        {**q, "needed_by": q["needed_by"].replace("+00:00", "Z")} for q in preview["requests"]
    ]
    assert [{**q, "needed_by": q["needed_by"].replace("+00:00", "Z")} for q in raised] == planned
    assert len(planned) == 9
    assert _planned_targets(preview) == _targets(world, declared["id"])
    rings = {ring["ring"]: [c["name"] for c in ring["cities"]] for ring in preview["rings"]}
    assert rings == {0: ["Thika"], 1: ["Machakos", "Mombasa", "Munich"], 2: ["Augsburg"]}
    assert [ring["reached_at"] for ring in preview["rings"]] == [
        "2026-02-12T08:00:00Z",
        "2026-02-12T08:30:00Z",
        "2026-02-12T10:30:00Z",
    ]


def test_a_dry_run_of_a_library_version_writes_nothing_and_uses_the_version(
    client: TestClient, world: World
) -> None:
    upload(client, world, "thika", SMALL_FLOOD)
    version = publish(client, world, "thika")
    observer = world.headers("observer", "nairobi")  # minted first: a new token is a change
    assert client.get(f"{API}/me", headers=observer).status_code == 200  # and its first use
    before = _everything(world)

    r = client.get(f"{API}/library/versions/{version['id']}/dry-run", headers=observer)

    assert r.status_code == 200, r.text
    assert _everything(world) == before
    preview = r.json()
    assert [q["resource"] for q in preview["requests"]] == [
        "sandbags",
        "high-capacity-pump",
        "cots",
    ]
    assert preview["city_id"] == world.city_ids["nairobi"]
    assert preview["playbook_version_id"] == version["id"]
    assert [c["name"] for c in preview["rings"][0]["cities"]] == ["Thika"]
    assert preview["rings"][0]["cities"][0]["distance_km"] > 30


def test_a_dry_run_refuses_what_the_declaration_refuses(client: TestClient, world: World) -> None:
    manager = world.headers("manager", "nairobi")
    unknown = {"incident_type": "flood", "title": "Flood", "playbook": "floood"}
    half = {"incident_type": "flood", "title": "Flood", "lat": 1.0}
    for body in (unknown, half):
        dry = client.post(f"{API}/incidents/dry-run", json=body, headers=manager)
        real = client.post(f"{API}/incidents", json=body, headers=manager)
        assert dry.status_code == real.status_code == 422
        assert dry.json() == real.json()
