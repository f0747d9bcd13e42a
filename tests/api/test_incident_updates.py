"""A manager updates an incident as the situation develops (severity, title, description,
location):
one `incident.updated` event per update that changes something, written in the same
transaction as the change, on every backend."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.commands.context import CommandContext
from service.commands.incident_updates import update_incident
from service.domain.actors import Actor, Role
from service.domain.errors import Conflict, IllegalTransition, Invalid
from service.domain.incident_updates import incident_changes
from service.domain.lifecycles import IncidentStatus
from service.models import IncidentUpdate
from service.persistence.tables import Incident
from tests.support import World

API = "/api/v1"


def _declare(client: TestClient, world: World, **extra: object) -> dict[str, Any]:
    body = {"incident_type": "flood", "title": "Nairobi River flood", **extra}
    r = client.post(f"{API}/incidents", json=body, headers=world.headers("manager", "nairobi"))
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


def _events(client: TestClient, world: World, incident_id: int) -> list[dict[str, Any]]:
    r = client.get(
        f"{API}/incidents/{incident_id}/events", headers=world.headers("observer", "thika")
    )
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()["data"]
    return events


def _patch(
    client: TestClient,
    world: World,
    incident_id: int,
    body: dict[str, Any],
    role: str = "manager",
    city: str | None = "nairobi",
) -> Any:
    headers = world.headers(role, city)
    return client.patch(f"{API}/incidents/{incident_id}", json=body, headers=headers)


def test_a_severity_change_is_one_event_with_the_old_and_new_values(
    client: TestClient, world: World
) -> None:
    incident = _declare(client, world, severity="moderate")

    r = _patch(client, world, incident["id"], {"severity": "extreme"})

    assert r.status_code == 200, r.text
    assert r.json()["severity"] == "extreme"
    assert r.json()["title"] == "Nairobi River flood"
    events = _events(client, world, incident["id"])
    assert [(e["seq"], e["type"]) for e in events] == [
        (1, "incident.declared"),
        (2, "incident.updated"),
    ]
    updated = events[-1]
    assert updated["data"]["changes"] == {"severity": {"old": "moderate", "new": "extreme"}}
    assert updated["data"]["incident"]["severity"] == "extreme"
    assert updated["actor_city_id"] == world.city_ids["nairobi"]
    # The requesting city's inbox, and every city that can see the incident, get it live.
    assert updated["audience"]["cities"] == [world.city_ids["nairobi"]]
    assert world.city_ids["thika"] in updated["audience"]["viewers"]
    shown = client.get(f"{API}/incidents/{incident['id']}", headers=world.headers("admin"))
    assert shown.json()["severity"] == "extreme"
    assert shown.json()["last_seq"] == 2


def test_title_and_description_change_together_in_one_event_listing_only_what_changed(
    client: TestClient, world: World
) -> None:
    incident = _declare(client, world, description="Rising")
    body = {
        "severity": "severe",  # as it is: not a change
        "title": "Nairobi and Athi rivers flood",
        "description": "Both rivers over their banks",
    }

    r = _patch(client, world, incident["id"], body)

    assert r.status_code == 200, r.text
    (updated,) = [e for e in _events(client, world, incident["id"]) if e["seq"] > 1]
    assert updated["data"]["changes"] == {
        "title": {"old": "Nairobi River flood", "new": "Nairobi and Athi rivers flood"},
        "description": {"old": "Rising", "new": "Both rivers over their banks"},
    }


def test_the_incident_moves_with_latitude_and_longitude_together(
    client: TestClient, world: World
) -> None:
    incident = _declare(client, world, lat=-1.2864, lon=36.8172)

    r = _patch(client, world, incident["id"], {"lat": -1.3, "lon": 36.9})

    assert r.status_code == 200, r.text
    assert (r.json()["lat"], r.json()["lon"]) == (-1.3, 36.9)
    (updated,) = [e for e in _events(client, world, incident["id"]) if e["seq"] > 1]
    assert updated["data"]["changes"] == {
        "lat": {"old": -1.2864, "new": -1.3},
        "lon": {"old": 36.8172, "new": 36.9},
    }
    assert (updated["data"]["incident"]["lat"], updated["data"]["incident"]["lon"]) == (-1.3, 36.9)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"lat": -1.3}, "give both lat and lon"),
        ({"lon": 36.9}, "give both lat and lon"),
        ({"lat": None, "lon": None}, "must not be null"),
        ({"lat": -91, "lon": 36.9}, "greater than or equal to -90"),
        ({"lat": -1.3, "lon": 181}, "less than or equal to 180"),
        ({"lat": "-1.3", "lon": 36.9}, "valid number"),
    ],
    ids=["lat-alone", "lon-alone", "null", "lat-out-of-range", "lon-out-of-range", "string"],
)
def test_a_move_without_both_coordinates_in_range_is_422_and_changes_nothing(
    client: TestClient, world: World, body: dict[str, Any], why: str
) -> None:
    incident = _declare(client, world, lat=-1.2864, lon=36.8172)

    r = _patch(client, world, incident["id"], body)

    assert r.status_code == 422, r.text
    assert why in r.text
    assert [e["type"] for e in _events(client, world, incident["id"])] == ["incident.declared"]


@pytest.mark.parametrize(
    "body",
    [{}, {"severity": "severe"}, {"title": "Nairobi River flood", "exercise": False}],
    ids=["empty", "same-severity", "same-title-and-flag"],
)
def test_an_update_that_changes_nothing_is_200_and_records_no_event(
    client: TestClient, world: World, body: dict[str, Any]
) -> None:
    incident = _declare(client, world)

    r = _patch(client, world, incident["id"], body)

    assert r.status_code == 200, r.text
    assert r.json()["last_seq"] == 1
    assert [e["type"] for e in _events(client, world, incident["id"])] == ["incident.declared"]


def test_a_closed_incident_refuses_an_update_with_409_and_keeps_its_record(
    client: TestClient, world: World
) -> None:
    incident = _declare(client, world)
    manager = world.headers("manager", "nairobi")
    closed = client.post(f"{API}/incidents/{incident['id']}/close", headers=manager)
    assert closed.status_code == 200, closed.text

    r = _patch(client, world, incident["id"], {"severity": "extreme"})

    assert r.status_code == 409, r.text
    assert "closed" in r.json()["detail"]
    shown = client.get(f"{API}/incidents/{incident['id']}", headers=manager).json()
    assert shown["severity"] == "severe"
    assert [e["type"] for e in _events(client, world, incident["id"])] == [
        "incident.declared",
        "incident.closed",
    ]


@pytest.mark.parametrize("exercise", [True, False])
def test_an_exercise_stays_an_exercise_and_a_real_incident_stays_real(
    client: TestClient, world: World, exercise: bool
) -> None:
    incident = _declare(client, world, exercise=exercise)

    r = _patch(client, world, incident["id"], {"exercise": not exercise, "severity": "extreme"})

    assert r.status_code == 422, r.text
    assert "exercise cannot change" in r.json()["detail"]
    shown = client.get(f"{API}/incidents/{incident['id']}", headers=world.headers("admin"))
    assert (shown.json()["exercise"], shown.json()["severity"]) == (exercise, "severe")
    assert len(_events(client, world, incident["id"])) == 1


def test_the_admin_may_update_any_incident_and_the_event_says_so(
    client: TestClient, world: World
) -> None:
    incident = _declare(client, world)

    r = _patch(client, world, incident["id"], {"severity": "minor"}, "admin", None)

    assert r.status_code == 200, r.text
    updated = _events(client, world, incident["id"])[-1]
    assert (updated["type"], updated["actor_role"], updated["actor_city_id"]) == (
        "incident.updated",
        "admin",
        None,
    )


def test_a_peer_manager_gets_403_and_a_city_that_cannot_see_it_gets_the_missing_404(
    client: TestClient, world: World
) -> None:
    incident = _declare(client, world)

    peer = _patch(client, world, incident["id"], {"severity": "minor"}, "manager", "thika")
    hidden = _patch(client, world, incident["id"], {"severity": "minor"}, "manager", "berlin")
    missing = _patch(client, world, 2_147_480_000, {"severity": "minor"}, "manager", "berlin")

    assert peer.status_code == 403, peer.text
    assert "requesting city's manager" in peer.json()["detail"]
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == f"incident {incident['id']} not found"
    assert missing.json()["detail"] == "incident 2147480000 not found"


def test_the_change_and_its_event_are_written_in_one_transaction(
    client: TestClient, world: World
) -> None:
    incident = _declare(client, world)
    manager = Actor(Role.MANAGER, world.city_ids["nairobi"])

    def update_then_fail(ctx: CommandContext, incident_id: int, body: IncidentUpdate) -> None:
        update_incident(ctx, incident_id, body)
        assert ctx.events and ctx.events[-1].type == "incident.updated"
        raise Conflict("something later in the same transaction failed")

    with pytest.raises(Conflict):
        world.executor.run_sync(
            manager, update_then_fail, incident["id"], IncidentUpdate(severity="extreme")
        )

    with world.executor.db.read() as session:
        row = session.get(Incident, incident["id"])
        assert row is not None
        assert (row.severity, row.last_seq) == ("severe", 1)
    assert len(_events(client, world, incident["id"])) == 1

    row, events = world.executor.run_sync(
        manager, update_incident, incident["id"], IncidentUpdate(severity="extreme")
    )
    assert [(e.seq, e.type) for e in events] == [(2, "incident.updated")]
    assert row is not None and row.severity == "extreme"


# The rule itself, over plain values --------------------------------------------------------

CURRENT = {"severity": "severe", "title": "Flood", "description": "", "exercise": False}


def test_the_rule_lists_each_changed_field_in_a_fixed_order() -> None:
    changes = incident_changes(
        IncidentStatus.ACTIVE, CURRENT, {"description": "Worse", "severity": "extreme"}
    )
    assert [(name, c.old, c.new) for name, c in changes.items()] == [
        ("severity", "severe", "extreme"),
        ("description", "", "Worse"),
    ]
    assert incident_changes(IncidentStatus.ACTIVE, CURRENT, {"title": "Flood"}) == {}


def test_the_rule_refuses_a_closed_incident_a_flag_change_and_unknown_fields() -> None:
    with pytest.raises(IllegalTransition, match="closed"):
        incident_changes(IncidentStatus.CLOSED, CURRENT, {})
    with pytest.raises(Invalid, match="exercise cannot change"):
        incident_changes(IncidentStatus.ACTIVE, CURRENT, {"exercise": True})
    with pytest.raises(Invalid, match="cannot change city_id"):
        incident_changes(IncidentStatus.ACTIVE, CURRENT, {"city_id": 2})
