"""Declaring from a playbook, trimmed or adjusted: `playbook_requests` raises only the
requests chosen (by position), with their quantity and priority; the dry run shows the
same; a bad choice is refused and declares nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from playbooks import load_stock_playbooks
from tests.support import World

API = "/api/v1"
FLOOD = load_stock_playbooks()["flood"]


def _declare(client: TestClient, world: World, path: str = "/incidents", **extra: Any) -> Any:
    body = {"incident_type": "flood", "title": "Flood", "playbook": "flood", **extra}
    return client.post(f"{API}{path}", json=body, headers=world.headers("manager", "nairobi"))


def test_only_the_chosen_requests_are_raised_as_adjusted(client: TestClient, world: World) -> None:
    chosen = [
        {"index": 3, "quantity": 2},
        {"index": 0, "quantity": 1, "priority": "high"},
    ]
    r = _declare(client, world, playbook_requests=chosen)
    assert r.status_code == 201, r.text
    raised = [(q["resource"], q["quantity"], q["priority"]) for q in r.json()["requests"]]
    assert raised == [
        (FLOOD.requests[0].resource, 1, "high"),
        (FLOOD.requests[3].resource, 2, FLOOD.requests[3].priority),
    ]
    assert r.json()["last_seq"] == 3


def test_without_a_choice_every_request_is_raised_and_an_empty_one_raises_none(
    client: TestClient, world: World
) -> None:
    every = _declare(client, world).json()["requests"]
    assert [q["quantity"] for q in every] == [item.quantity for item in FLOOD.requests]
    none = _declare(client, world, playbook_requests=[])
    assert none.status_code == 201 and none.json()["requests"] == []


def test_the_dry_run_shows_the_chosen_requests(client: TestClient, world: World) -> None:
    r = _declare(
        client, world, "/incidents/dry-run", playbook_requests=[{"index": 1, "quantity": 1}]
    )
    assert r.status_code == 200, r.text
    assert [q["resource"] for q in r.json()["requests"]] == [FLOOD.requests[1].resource]


@pytest.mark.parametrize(
    ("choices", "detail"),
    [
        ([{"index": 19, "quantity": 1}], "there is no index 19"),
        ([{"index": 0, "quantity": 1}, {"index": 0, "quantity": 2}], "index 0 is chosen twice"),
    ],
)
def test_a_choice_the_playbook_cannot_meet_is_422_and_declares_nothing(
    client: TestClient, world: World, choices: list[dict[str, Any]], detail: str
) -> None:
    r = _declare(client, world, playbook_requests=choices)
    assert r.status_code == 422, r.text
    assert detail in r.json()["detail"]
    assert client.get(f"{API}/incidents", headers=world.headers("admin")).json()["count"] == 0


@pytest.mark.parametrize(
    "choice",
    [
        {"index": -1, "quantity": 1},
        {"index": 20, "quantity": 1},
        {"index": "0", "quantity": 1},
        {"index": 0, "quantity": 0},
        {"index": 0, "quantity": 10_001},
        {"index": 0, "quantity": True},
        {"index": 0},
        {"index": 0, "quantity": 1, "priority": "urgent"},
        {"index": 0, "quantity": 1, "resource": "cots"},
    ],
)
def test_a_malformed_choice_is_422(client: TestClient, world: World, choice: Any) -> None:
    r = _declare(client, world, playbook_requests=[choice])
    assert r.status_code == 422, r.text


def test_choices_without_a_playbook_or_too_many_are_422(client: TestClient, world: World) -> None:
    r = client.post(
        f"{API}/incidents",
        json={"incident_type": "flood", "title": "x", "playbook_requests": []},
        headers=world.headers("manager", "nairobi"),
    )
    assert r.status_code == 422 and r.json()["detail"] == "playbook_requests go with a playbook"
    many = [{"index": i, "quantity": 1} for i in range(21)]
    assert _declare(client, world, playbook_requests=many).status_code == 422
