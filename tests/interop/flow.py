"""A realistic incident driven through the REST API, for the interoperability tests:
Nairobi declares a flood, raises pumps and an information request; Thika claims,
is accepted, travels, arrives and is released; the information request is answered;
a third request is cancelled; a claim is withdrawn; a request escalates to ring 1."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from service.commands.sweeps import escalate_request
from service.domain.actors import SYSTEM
from tests.support import FakeClock, World

API = "/api/v1"


@dataclass
class Flow:
    incident_id: int
    pumps_id: int
    info_id: int
    cancelled_id: int
    escalated_id: int


def ok(response: Any, code: int = 200) -> Any:
    assert response.status_code == code, response.text
    return response.json()


def run_flow(client: TestClient, world: World, clock: FakeClock) -> Flow:
    manager = world.headers("manager", "nairobi")
    thika = world.headers("responder", "thika")
    incident = ok(
        client.post(
            f"{API}/incidents",
            headers=manager,
            json={"incident_type": "flood", "title": "Nairobi River flood", "severity": "severe"},
        ),
        201,
    )
    iid = incident["id"]

    def raise_(resource: str, quantity: int, **extra: Any) -> int:
        body = {"resource": resource, "quantity": quantity, **extra}
        return int(
            ok(client.post(f"{API}/incidents/{iid}/requests", headers=manager, json=body), 201)[
                "id"
            ]
        )

    def claim(request_id: int, quantity: int, key: str) -> int:
        headers = {**thika, "Idempotency-Key": key}
        body = {"quantity": quantity}
        return int(
            ok(client.post(f"{API}/requests/{request_id}/claims", headers=headers, json=body), 201)[
                "id"
            ]
        )

    def move(claim_id: int, who: dict[str, str], status: str, **extra: Any) -> None:
        ok(
            client.post(
                f"{API}/claims/{claim_id}/status", headers=who, json={"status": status, **extra}
            )
        )

    needed_by = (clock.now + timedelta(hours=6)).isoformat()
    pumps = raise_(
        "high-capacity-pump",
        4,
        priority="high",
        needed_by=needed_by,
        report_to="Kirinyaga Road depot",
        notes="Diesel pumps preferred",
    )
    info = raise_("hydrological-forecast", 1)
    cancelled = raise_("generator-100kw", 2)
    escalated = raise_("potable-water-truck", 3, priority="critical")

    first = claim(pumps, 3, "pumps-1")
    move(first, manager, "accepted")
    move(first, thika, "en_route", note="Leaving Thika")
    move(first, thika, "on_site")
    move(first, thika, "released")
    answer = claim(info, 1, "info-1")
    move(answer, manager, "accepted")
    move(answer, thika, "released", answer="Two bridges closed on the A2")
    ok(client.post(f"{API}/requests/{cancelled}/cancel", headers=manager))
    withdrawn = claim(pumps, 1, "pumps-2")
    move(withdrawn, thika, "withdrawn")

    clock.advance(timedelta(minutes=31))
    (escalated_ok, _) = world.executor.run_sync(SYSTEM, escalate_request, escalated, 0)
    assert escalated_ok
    return Flow(iid, pumps, info, cancelled, escalated)
