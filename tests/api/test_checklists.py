"""The playbook's checklists on an incident: copied at declaration, ticked off by the
requesting city's manager, each change one `checklist.ticked` event."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from playbooks import load_stock_playbooks
from tests.support import FakeClock, World

API = "/api/v1"
FLOOD = load_stock_playbooks()["flood"]


def _declare(client: TestClient, world: World, **extra: Any) -> dict[str, Any]:
    body = {"incident_type": "flood", "title": "Flood", **extra}
    r = client.post(f"{API}/incidents", json=body, headers=world.headers("manager", "nairobi"))
    assert r.status_code == 201, r.text
    incident: dict[str, Any] = r.json()
    return incident


def _tick(
    client: TestClient, world: World, incident_id: int, body: Any, who: str = "nairobi"
) -> Any:
    return client.post(
        f"{API}/incidents/{incident_id}/checklist", json=body, headers=world.headers("manager", who)
    )


def test_a_playbooks_checklists_are_copied_and_ticked_off_each_tick_an_event(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    incident = _declare(client, world, playbook="flood", playbook_requests=[])
    assert [c["title"] for c in incident["checklists"]] == [c.title for c in FLOOD.checklists]
    assert not any(i["done"] for c in incident["checklists"] for i in c["items"])

    r = _tick(client, world, incident["id"], {"checklist": 1, "item": 0, "done": True})
    assert r.status_code == 200, r.text
    item = r.json()[1]["items"][0]
    assert (item["text"], item["done"], item["done_by_city_id"]) == (
        FLOOD.checklists[1].items[0],
        True,
        world.city_ids["nairobi"],
    )
    assert item["done_at"].startswith(clock.now.strftime("%Y-%m-%dT%H:%M"))
    # Again the same: nothing changes, nothing is recorded. Then unticked.
    assert _tick(
        client, world, incident["id"], {"checklist": 1, "item": 0, "done": True}
    ).is_success
    r = _tick(client, world, incident["id"], {"checklist": 1, "item": 0, "done": False})
    assert r.json()[1]["items"][0] == {
        "text": FLOOD.checklists[1].items[0],
        "done": False,
        "done_at": None,
        "done_by_city_id": None,
    }
    events = client.get(
        f"{API}/incidents/{incident['id']}/events", headers=world.headers("manager", "nairobi")
    ).json()["data"]
    ticks = [e for e in events if e["type"] == "checklist.ticked"]
    assert [(e["data"]["checklist"], e["data"]["item"], e["data"]["done"]) for e in ticks] == [
        (1, 0, True),
        (1, 0, False),
    ]
    assert ticks[0]["data"]["text"] == FLOOD.checklists[1].items[0]
    detail = client.get(
        f"{API}/incidents/{incident['id']}", headers=world.headers("observer", "thika")
    ).json()
    assert detail["checklists"] == r.json()


def test_an_incident_without_a_playbook_has_no_checklists(client: TestClient, world: World) -> None:
    incident = _declare(client, world)
    assert incident["checklists"] == []
    r = _tick(client, world, incident["id"], {"checklist": 0, "item": 0, "done": True})
    assert r.status_code == 422
    assert r.json()["detail"] == "the incident has 0 checklists; there is no checklist 0"


@pytest.mark.parametrize(
    "body",
    [
        {"checklist": 0, "item": 49, "done": True},
        {"checklist": 19, "item": 0, "done": True},
        {"checklist": -1, "item": 0, "done": True},
        {"checklist": 0, "item": 50, "done": True},
        {"checklist": "0", "item": 0, "done": True},
        {"checklist": 0, "item": 0, "done": "true"},
        {"checklist": 0, "item": 0},
        {"checklist": 0, "item": 0, "done": True, "done_at": "2026-02-12T08:00:00Z"},
    ],
)
def test_a_tick_that_is_not_of_this_incidents_checklists_is_422_and_records_nothing(
    client: TestClient, world: World, body: Any
) -> None:
    incident = _declare(client, world, playbook="flood", playbook_requests=[])
    assert _tick(client, world, incident["id"], body).status_code == 422
    events = client.get(
        f"{API}/incidents/{incident['id']}/events", headers=world.headers("admin")
    ).json()["data"]
    assert [e["type"] for e in events] == ["incident.declared"]


def test_a_closed_incidents_checklists_are_final(client: TestClient, world: World) -> None:
    incident = _declare(client, world, playbook="flood", playbook_requests=[])
    client.post(
        f"{API}/incidents/{incident['id']}/close", headers=world.headers("manager", "nairobi")
    )
    r = _tick(client, world, incident["id"], {"checklist": 0, "item": 0, "done": True})
    assert r.status_code == 409, r.text
