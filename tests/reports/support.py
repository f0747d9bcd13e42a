"""The scripted incident the report tests share: three requests whose clocks are known to
the second, two helping cities, an escalation, a pass, a decline and an expiry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from service.commands.sweeps import escalate_request, expire_request
from service.domain.actors import SYSTEM
from tests.library.support import API, SMALL_FLOOD, upload
from tests.support import FakeClock, World

START = datetime(2026, 2, 12, 8, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


def iso(minutes: int) -> str:
    return at(minutes).isoformat()


@dataclass(frozen=True)
class Scripted:
    incident_id: int
    sandbags: int
    pump: int
    cots: int
    thika_claim: int
    machakos_claim: int


def run_scripted_incident(client: TestClient, world: World, clock: FakeClock) -> Scripted:
    """08:00 declared (sandbags, pump, cots; 1 unit each). 08:10 Thika claims the sandbags;
    08:20 accepted and en route; 08:30 pump and cots escalate to ring 1; 08:40 sandbags on
    site; 08:45 Thika passes on the cots; 08:50 Machakos (ring 1) claims the pump; 08:55
    the manager declines that claim; 09:01 the cots expire unfilled. The clock is left at 09:30."""
    upload(client, world, "nairobi", SMALL_FLOOD)
    manager = world.headers("manager", "nairobi")
    run = world.executor.run_sync

    def move_to(minutes: int) -> None:
        clock.now = at(minutes)

    def claim(request_id: int, city: str, key: str) -> int:
        r = client.post(
            f"{API}/requests/{request_id}/claims",
            json={"quantity": 1},
            headers={**world.headers("responder", city), "Idempotency-Key": key},
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def move(claim_id: int, status: str, headers: dict[str, str]) -> None:
        r = client.post(f"{API}/claims/{claim_id}/status", json={"status": status}, headers=headers)
        assert r.status_code == 200, r.text

    move_to(0)
    body = {"incident_type": "flood", "title": "Nairobi River flood", "playbook": "flood"}
    r = client.post(f"{API}/incidents", json=body, headers=manager)
    assert r.status_code == 201, r.text
    incident: dict[str, Any] = r.json()
    sandbags, pump, cots = (q["id"] for q in incident["requests"])
    thika = world.headers("responder", "thika")
    move_to(10)
    a = claim(sandbags, "thika", "a")
    move_to(20)
    move(a, "accepted", manager)
    move(a, "en_route", thika)
    move_to(30)
    assert run(SYSTEM, escalate_request, pump, 0)[0]
    assert run(SYSTEM, escalate_request, cots, 0)[0]
    move_to(40)
    move(a, "on_site", thika)
    move_to(45)
    r = client.post(f"{API}/requests/{cots}/passes", json={"reason": "none spare"}, headers=thika)
    assert r.status_code == 201, r.text
    move_to(50)
    b = claim(pump, "machakos", "b")
    move_to(55)
    move(b, "declined", manager)
    move_to(61)
    assert run(SYSTEM, expire_request, cots)[0]
    move_to(90)
    return Scripted(incident["id"], sandbags, pump, cots, a, b)
