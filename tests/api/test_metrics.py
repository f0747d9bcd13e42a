"""`/metrics` has what an operator alerts on: requests waiting by priority, critical ones
unclaimed and for how long, time to first claim and to fill, escalations, expiries,
claims by outcome, and HTTP requests by route template."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.api.deps import AppParts
from tests.support import FakeClock, World

API = "/api/v1"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _raise(client: TestClient, world: World, incident_id: int, priority: str, quantity: int) -> int:
    response = client.post(
        f"{API}/incidents/{incident_id}/requests",
        headers=world.headers("manager", "nairobi"),
        json={"resource": "high-capacity-pump", "quantity": quantity, "priority": priority},
    )
    assert response.status_code == 201, response.text
    request_id: int = response.json()["id"]
    return request_id


def _claim(client: TestClient, world: World, request_id: int, quantity: int, key: str) -> None:
    response = client.post(
        f"{API}/requests/{request_id}/claims",
        headers={**world.headers("responder", "thika"), "Idempotency-Key": key},
        json={"quantity": quantity},
    )
    assert response.status_code == 201, response.text


def test_metrics_follow_a_declare_claim_fill_and_escalation(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    before = _scrape(client)
    declared = client.post(
        f"{API}/incidents",
        headers=world.headers("manager", "nairobi"),
        json={"incident_type": "flood", "title": "Nairobi River flood"},
    )
    incident_id = declared.json()["id"]
    critical = _raise(client, world, incident_id, "critical", 4)
    _raise(client, world, incident_id, "normal", 2)

    clock.advance(timedelta(minutes=10))
    waiting = _scrape(client)
    assert _value(waiting, "aidmesh_open_requests", priority="critical") == 1
    assert _value(waiting, "aidmesh_open_requests", priority="normal") == 1
    assert _value(waiting, "aidmesh_open_requests", priority="high") == 0
    assert _value(waiting, "aidmesh_critical_requests_unclaimed") == 1
    assert _value(waiting, "aidmesh_critical_request_oldest_unclaimed_age_seconds") == 600

    _claim(client, world, critical, 1, "m-1")
    clock.advance(timedelta(minutes=5))
    _claim(client, world, critical, 3, "m-2")
    filled = _scrape(client)
    assert _value(filled, "aidmesh_critical_requests_unclaimed") == 0
    assert _value(filled, "aidmesh_critical_request_oldest_unclaimed_age_seconds") == 0
    assert _value(filled, "aidmesh_open_requests", priority="critical") == 0

    def delta(name: str, **labels: str) -> float:
        return _value(filled, name, **labels) - _value(before, name, **labels)

    assert delta("aidmesh_claims_total", outcome="made") == 2
    assert delta("aidmesh_request_time_to_first_claim_seconds_count") == 1
    assert delta("aidmesh_request_time_to_first_claim_seconds_sum") == 600
    assert delta("aidmesh_request_time_to_fill_seconds_count") == 1
    assert delta("aidmesh_request_time_to_fill_seconds_sum") == 900
    route = f"{API}/requests/{{request_id}}/claims"
    assert delta("aidmesh_http_requests_total", method="POST", route=route, status="201") == 2
    assert delta("aidmesh_http_request_duration_seconds_count", method="POST", route=route) == 2
    # Templates only: no label holds a request's id.
    routes = {dict(labels).get("route", "") for _, labels in filled}
    assert not any(f"/requests/{critical}" in route for route in routes), routes

    # The normal request nobody claimed widens to ring 1 after 30 minutes (so does the
    # critical one, whose claims nobody accepted in time: they expire and free its units).
    parts: AppParts = client.app.state.parts  # type: ignore[attr-defined]
    clock.advance(timedelta(minutes=31))
    assert client.portal is not None
    report = client.portal.call(parts.sweeper.sweep)
    assert report.escalated == 2 and report.claims_expired == 2
    escalated = _scrape(client)
    assert (
        _value(escalated, "aidmesh_request_escalations_total", ring="1")
        - _value(before, "aidmesh_request_escalations_total", ring="1")
        == 2
    )
    assert _value(escalated, "aidmesh_critical_requests_unclaimed") == 1


def test_expired_claims_count_as_expiries_and_as_an_outcome(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    before = _scrape(client)
    declared = client.post(
        f"{API}/incidents",
        headers=world.headers("manager", "nairobi"),
        json={"incident_type": "flood", "title": "F"},
    )
    request_id = _raise(client, world, declared.json()["id"], "high", 2)
    _claim(client, world, request_id, 1, "x-1")
    parts: AppParts = client.app.state.parts  # type: ignore[attr-defined]
    clock.advance(timedelta(minutes=31))  # nobody accepted the claim in time
    assert client.portal is not None
    assert client.portal.call(parts.sweeper.sweep).claims_expired == 1
    after = _scrape(client)
    assert (
        _value(after, "aidmesh_expiries_total", kind="claim")
        - _value(before, "aidmesh_expiries_total", kind="claim")
        == 1
    )
    assert (
        _value(after, "aidmesh_claims_total", outcome="expired")
        - _value(before, "aidmesh_claims_total", outcome="expired")
        == 1
    )
