"""Situation reports: numbered, frozen for their period, immutable, live as `sitrep.published`."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.library.support import API
from tests.reports.support import Scripted, iso, run_scripted_incident
from tests.support import FakeClock, World


def _publish(
    client: TestClient, world: World, s: Scripted, start: int, end: int | None
) -> dict[str, object]:
    body = {"period_from": iso(start)} | ({"period_to": iso(end)} if end is not None else {})
    r = client.post(
        f"{API}/incidents/{s.incident_id}/sitreps",
        json=body,
        headers=world.headers("manager", "nairobi"),
    )
    assert r.status_code == 201, r.text
    found: dict[str, object] = r.json()
    return found


def test_a_sitrep_freezes_the_resource_totals_of_its_period(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    s = run_scripted_incident(client, world, clock)
    first = _publish(client, world, s, 0, 45)
    doc = first["document"]
    assert isinstance(doc, dict)

    assert (first["number"], first["period_from"], first["period_to"]) == (1, iso(0), iso(45))
    assert first["published_at"] == iso(90)
    assert doc["MessageID"] == f"aidmesh-sitrep-{s.incident_id}-1"
    assert doc["ReportVersion"] == "Initial"
    assert doc["ForTimePeriod"] == {"FromDateTime": iso(0), "ToDateTime": iso(45)}
    assert doc["PreparedBy"]["OrganizationName"] == "Nairobi"
    assert doc["PreparedBy"]["Role"] == "manager"
    assert doc["PreparedBy"]["TokenLabel"] == "manager:nairobi"  # the token's label
    assert doc["IncidentID"] == f"aidmesh-incident-{s.incident_id}"
    totals = doc["Report"]["ResponseResourcesTotals"]
    # At 08:45: the sandbags on site, the pump and cots asked for and uncommitted.
    assert {
        t["ResourceTypeName"]: (t["Requested"], t["Committed"], t["OnSite"])
        for t in totals["ResourceTotals"]
    } == {"sandbags": (1, 1, 1), "high-capacity-pump": (1, 0, 0), "cots": (1, 0, 0)}
    assert totals["Totals"] == {"Requested": 3, "Committed": 1, "OnSite": 1}

    second = _publish(client, world, s, 45, 52)  # the pump committed at 08:50
    pump = next(
        t
        for t in second["document"]["Report"]["ResponseResourcesTotals"]["ResourceTotals"]  # type: ignore[index]
        if t["ResourceTypeName"] == "high-capacity-pump"
    )
    assert (second["number"], pump["Committed"], pump["RequestedInPeriod"]) == (2, 1, 0)
    assert second["document"]["ReportVersion"] == "Update"  # type: ignore[index]

    # The earlier report reads as it was published; the list pages newest first.
    observer = world.headers("observer", "thika")
    again = client.get(f"{API}/incidents/{s.incident_id}/sitreps/1", headers=observer).json()
    assert again == first
    page = client.get(
        f"{API}/incidents/{s.incident_id}/sitreps", params={"limit": 1}, headers=observer
    ).json()
    assert ([r["number"] for r in page["data"]], page["count"], page["next_offset"]) == ([2], 2, 1)


def test_the_period_ends_now_when_left_out_and_never_in_the_future(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    s = run_scripted_incident(client, world, clock)
    assert _publish(client, world, s, 0, None)["period_to"] == iso(90)
    manager = world.headers("manager", "nairobi")
    url = f"{API}/incidents/{s.incident_id}/sitreps"
    for body in (
        {"period_from": iso(60), "period_to": iso(30)},
        {"period_from": iso(60), "period_to": iso(60)},
        {"period_from": iso(0), "period_to": iso(120)},
        {"period_from": "2026-02-12T08:00:00"},  # no time zone
        {"period_from": iso(0), "number": 7},  # numbers are the service's
    ):
        r = client.post(url, json=body, headers=manager)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["detail"]
    assert client.get(url, headers=manager).json()["count"] == 1


def test_publishing_is_recorded_as_a_live_event(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    s = run_scripted_incident(client, world, clock)
    published = _publish(client, world, s, 0, 45)
    events = client.get(
        f"{API}/incidents/{s.incident_id}/events",
        params={"after": 0, "limit": 1000},
        headers=world.headers("observer", "thika"),
    ).json()["data"]
    last = events[-1]
    assert last["type"] == "sitrep.published"
    assert last["actor_city_id"] == world.city_ids["nairobi"]
    assert last["data"]["sitrep"]["number"] == 1
    assert last["data"]["sitrep"]["id"] == published["id"]


def test_a_published_sitrep_cannot_be_changed_even_in_the_database(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    s = run_scripted_incident(client, world, clock)
    _publish(client, world, s, 0, 45)
    with pytest.raises(DBAPIError, match="immutable"), world.executor.db.engine.begin() as conn:
        conn.execute(text("UPDATE sitreps SET number = 9"))


def test_only_a_manager_of_the_incidents_city_publishes(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    s = run_scripted_incident(client, world, clock)
    url = f"{API}/incidents/{s.incident_id}/sitreps"
    body = {"period_from": iso(0)}
    expected = {
        ("manager", "thika"): 403,
        ("manager", "berlin"): 404,
        ("responder", "nairobi"): 403,
        ("observer", "nairobi"): 403,
        ("admin", None): 403,
    }
    for (role, city), status in expected.items():
        r = client.post(url, json=body, headers=world.headers(role, city))
        assert r.status_code == status, (role, city, r.text)
    assert client.get(url, headers=world.headers("manager", "nairobi")).json()["count"] == 0
