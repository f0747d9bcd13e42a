"""What the roster tests share: a package of Thika's, an incident of Nairobi with a
pump request that reaches Thika at ring 0, and claims from the package."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

from tests.support import World

API = "/api/v1"
PUMP = "high-capacity-pump"


def package_body(**extra: Any) -> dict[str, Any]:
    return {
        "name": "Flood pumping strike team",
        "items": [{"resource": PUMP, "quantity": 6}],
        "readiness_hours": 4,
        "self_sufficiency_days": 3,
        "limitations": "No operators beyond 72 h",
        "cost_estimate": 12000,
        "cost_currency": "KES",
        "contact": "Thika fire desk +254 700 000 000",
        **extra,
    }


def add_package(client: TestClient, world: World, city: str = "thika", **extra: Any) -> Any:
    r = client.post(
        f"{API}/cities/{world.city_ids[city]}/roster",
        json=package_body(**extra),
        headers=world.headers("manager", city),
    )
    assert r.status_code == 201, r.text
    return r.json()


def declare(client: TestClient, world: World, title: str = "Nairobi River flood") -> int:
    r = client.post(
        f"{API}/incidents",
        json={"incident_type": "flood", "title": title},
        headers=world.headers("manager", "nairobi"),
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def raise_request(
    client: TestClient, world: World, incident_id: int, quantity: int = 4, resource: str = PUMP
) -> int:
    r = client.post(
        f"{API}/incidents/{incident_id}/requests",
        json={"resource": resource, "quantity": quantity},
        headers=world.headers("manager", "nairobi"),
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def claim(
    client: TestClient,
    world: World,
    request_id: int,
    quantity: int,
    key: str,
    package_id: int | None = None,
    city: str = "thika",
) -> Response:
    body: dict[str, Any] = {"quantity": quantity}
    if package_id is not None:
        body["package_id"] = package_id
    return client.post(
        f"{API}/requests/{request_id}/claims",
        json=body,
        headers={**world.headers("responder", city), "Idempotency-Key": key},
    )


def package(client: TestClient, world: World, package_id: int, city: str = "thika") -> Any:
    r = client.get(
        f"{API}/cities/{world.city_ids[city]}/roster/{package_id}",
        headers=world.headers("observer", city),
    )
    assert r.status_code == 200, r.text
    return r.json()


def committed(client: TestClient, world: World, package_id: int, city: str = "thika") -> int:
    items = package(client, world, package_id, city)["items"]
    return int(sum(item["committed_quantity"] for item in items))
