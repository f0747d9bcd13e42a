"""A request's staging point (its report-to) may carry coordinates, so the map can show
it: both or neither, in range, set when raising, moved or removed by an edit, carried by
the request's events."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.domain.errors import Invalid
from service.domain.lifecycles import RequestStatus
from service.domain.request_updates import request_changes
from service.models import AidRequestUpdate
from tests.api.test_request_updates import NOW, _events, _patch, _raise
from tests.support import World

API = "/api/v1"


def test_a_request_raised_with_a_staging_point_carries_it_in_its_event(
    client: TestClient, world: World
) -> None:
    request = _raise(client, world, report_to="Gate 2", report_lat=-1.3, report_lon=36.85)
    assert (request["report_lat"], request["report_lon"]) == (-1.3, 36.85)
    raised = [
        e for e in _events(client, world, request["incident_id"]) if e["type"] == "request.raised"
    ]
    assert raised[-1]["data"]["request"]["report_lat"] == -1.3
    assert raised[-1]["data"]["request"]["report_lon"] == 36.85
    plain = _raise(client, world, report_to="Gate 3")
    assert (plain["report_lat"], plain["report_lon"]) == (None, None)


def test_an_edit_moves_or_removes_the_staging_point_with_both_coordinates(
    client: TestClient, world: World
) -> None:
    request = _raise(client, world, report_to="Gate 2", report_lat=-1.3, report_lon=36.85)
    r = _patch(client, world, request["id"], {"report_lat": -1.25, "report_lon": 36.9})
    assert r.status_code == 200, r.text
    assert (r.json()["report_lat"], r.json()["report_lon"]) == (-1.25, 36.9)
    r = _patch(client, world, request["id"], {"report_lat": None, "report_lon": None})
    assert r.status_code == 200, r.text
    assert (r.json()["report_lat"], r.json()["report_lon"]) == (None, None)
    updates = [
        e for e in _events(client, world, request["incident_id"]) if e["type"] == "request.updated"
    ]
    assert [u["data"]["changes"] for u in updates] == [
        {"report_lat": {"old": -1.3, "new": -1.25}, "report_lon": {"old": 36.85, "new": 36.9}},
        {"report_lat": {"old": -1.25, "new": None}, "report_lon": {"old": 36.9, "new": None}},
    ]
    # One coordinate alone would leave half a place: refused, nothing changes.
    r = _patch(client, world, request["id"], {"report_lat": -1.2})
    assert r.status_code == 422, r.text
    assert "both" in r.json()["detail"]
    assert len(_events(client, world, request["incident_id"])) == len(updates) + 2


@pytest.mark.parametrize(
    "extra",
    [
        {"report_lat": -1.3},
        {"report_lon": 36.8},
        {"report_lat": 91.0, "report_lon": 36.8},
        {"report_lat": -1.3, "report_lon": -180.5},
        {"report_lat": "-1.3", "report_lon": 36.8},
    ],
)
def test_a_staging_point_with_one_coordinate_or_out_of_range_is_422(
    client: TestClient, world: World, extra: dict[str, Any]
) -> None:
    manager = world.headers("manager", "nairobi")
    r = client.post(
        f"{API}/incidents", json={"incident_type": "flood", "title": "Flood"}, headers=manager
    )
    incident_id = r.json()["id"]
    body = {"resource": "high-capacity-pump", "quantity": 2, "report_to": "Gate", **extra}
    r = client.post(f"{API}/incidents/{incident_id}/requests", json=body, headers=manager)
    assert r.status_code == 422, r.text
    events = _events(client, world, incident_id)
    assert [e["type"] for e in events] == ["incident.declared"]


def test_the_rule_keeps_a_staging_point_whole() -> None:
    current = {
        "quantity": 4,
        "priority": "normal",
        "needed_by": None,
        "report_to": "Gate",
        "report_lat": -1.3,
        "report_lon": 36.8,
    }
    moved = request_changes(
        RequestStatus.OPEN, current, {"report_lon": 36.9}, claimed_quantity=0, now=NOW
    )
    assert [(n, c.old, c.new) for n, c in moved.items()] == [("report_lon", 36.8, 36.9)]
    with pytest.raises(Invalid, match="both"):
        request_changes(
            RequestStatus.OPEN, current, {"report_lat": None}, claimed_quantity=0, now=NOW
        )


def test_the_update_schema_says_null_removes_the_staging_point() -> None:
    props = AidRequestUpdate.model_json_schema()["properties"]
    assert {"type": "null"} in props["report_lat"]["anyOf"]
    assert "anyOf" not in props["report_to"]
