"""Track records from a scripted incident whose clock is known to the second."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from service.commands.sweeps import escalate_request, expire_request
from service.domain.actors import SYSTEM
from service.domain.track_records import RequestTimeline, percentile, track_record
from tests.library.support import API, SMALL_FLOOD, publish, upload
from tests.support import FakeClock, World


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([600.0, 3000.0], 0.5) == 600.0
    assert percentile([600.0, 3000.0], 0.9) == 3000.0
    assert percentile([float(s) for s in range(1, 11)], 0.9) == 9.0
    assert track_record(0, []).fill_rate is None


def test_a_scripted_incident_gives_its_version_an_exact_track_record(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    upload(client, world, "nairobi", SMALL_FLOOD)
    version = publish(client, world, "nairobi")
    manager = world.headers("manager", "nairobi")
    thika = world.headers("responder", "thika")
    body = {"incident_type": "flood", "title": "Flood", "playbook": "flood"}
    # An exercise with the same version counts for nothing.
    exercise = client.post(f"{API}/incidents", json={**body, "exercise": True}, headers=manager)
    assert exercise.status_code == 201
    incident = client.post(f"{API}/incidents", json=body, headers=manager).json()
    sandbags, pump, cots = (q["id"] for q in incident["requests"])
    run = world.executor.run_sync

    def at(minutes: int) -> None:
        clock.now = clock.now.replace(hour=8, minute=0) + timedelta(minutes=minutes)

    def claim(request_id: int, key: str) -> Any:
        r = client.post(
            f"{API}/requests/{request_id}/claims",
            json={"quantity": 1},
            headers={**thika, "Idempotency-Key": key},
        )
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def move(claim_id: int, status: str, headers: dict[str, str]) -> None:
        r = client.post(f"{API}/claims/{claim_id}/status", json={"status": status}, headers=headers)
        assert r.status_code == 200, r.text

    at(10)
    sandbags_claim = claim(sandbags, "a")  # first claim after 600 s
    at(20)
    move(sandbags_claim, "accepted", manager)
    move(sandbags_claim, "en_route", thika)
    at(30)
    assert run(SYSTEM, escalate_request, pump, 0)[0]
    assert run(SYSTEM, escalate_request, cots, 0)[0]
    at(40)
    move(sandbags_claim, "on_site", thika)  # fulfilled after 2,400 s
    at(50)
    claim(pump, "b")  # first claim after 3,000 s, never fulfilled
    at(61)
    assert run(SYSTEM, expire_request, cots)[0]  # needed within an hour: expires unfilled

    listed = client.get(f"{API}/library", headers=world.headers("observer", "thika")).json()
    (shown,) = [v for v in listed if v["id"] == version["id"]]

    assert shown["track_record"] == {
        "incident_count": 1,
        "request_count": 3,
        "first_claim_p50_s": 600.0,
        "first_claim_p90_s": 3000.0,
        "fill_p50_s": 2400.0,
        "fill_p90_s": 2400.0,
        "fill_rate": 0.3333,
        "expired_unfilled_count": 1,
        "escalation_count": 2,
    }


def test_a_version_nobody_declared_has_an_empty_record(client: TestClient, world: World) -> None:
    upload(client, world, "thika", SMALL_FLOOD)
    version = publish(client, world, "thika")
    record = client.get(
        f"{API}/library/versions/{version['id']}", headers=world.headers("observer", "nairobi")
    ).json()["track_record"]
    assert record["incident_count"] == record["request_count"] == 0
    assert record["first_claim_p50_s"] is None and record["fill_rate"] is None


def test_timelines_count_only_the_expired_that_were_never_fulfilled() -> None:
    clock = FakeClock()
    t0 = clock.now
    timelines = [
        RequestTimeline(t0, None, None, True, 0),
        RequestTimeline(t0, t0 + timedelta(seconds=5), t0 + timedelta(seconds=9), False, 1),
    ]
    record = track_record(1, timelines)
    assert (record.expired_unfilled_count, record.escalation_count, record.fill_rate) == (1, 1, 0.5)
