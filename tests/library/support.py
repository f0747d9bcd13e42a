"""What the library's tests share: a small playbook, uploads, publishing and adopting."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.support import World

API = "/api/v1"

# Three requests, needed within 6h, 6h and 1h; rings after 30 minutes and 2 hours.
SMALL_FLOOD = """\
incident_type: flood
title: Small flood
description: Three requests, for tests.
default_severity: severe
escalation:
  ring0_radius_km: 50
  ring_intervals: [30m, 2h]
claim_acceptance_timeout: 20m
requests:
  - resource: sandbags
    quantity: 1
    priority: high
    needed_within: 6h
  - resource: high-capacity-pump
    quantity: 1
    priority: high
    needed_within: 6h
  - resource: cots
    quantity: 1
    priority: normal
    needed_within: 1h
"""


def upload(client: TestClient, world: World, city: str, source: str) -> None:
    r = client.put(
        f"{API}/cities/{world.city_ids[city]}/playbooks/flood",
        json={"source": source},
        headers=world.headers("admin"),
    )
    assert r.status_code == 200, r.text


def publish(client: TestClient, world: World, city: str, note: str = "") -> dict[str, Any]:
    r = client.post(
        f"{API}/cities/{world.city_ids[city]}/library/flood",
        json={"change_note": note},
        headers=world.headers("manager", city),
    )
    assert r.status_code == 201, r.text
    found: dict[str, Any] = r.json()
    return found


def take(
    client: TestClient, world: World, city: str, version_id: int, how: str = "adopt"
) -> dict[str, Any]:
    r = client.post(
        f"{API}/cities/{world.city_ids[city]}/library/versions/{version_id}/{how}",
        headers=world.headers("manager", city),
    )
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found
