"""Cities' own playbooks through the API, and declaring from a playbook."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from hypothesis import given, settings
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from playbooks import LIMITS, stock_dir
from service.api.body_limits import BODY_CAPS
from service.main import create_app
from service.persistence.tables import CityPlaybook
from tests.playbooks.hostile import HOSTILE, Hostile, billion_laughs
from tests.playbooks.yaml_strategies import bad_playbooks
from tests.support import FakeClock, World, app_settings

OWN_FLOOD = """\
incident_type: flood
title: Nairobi River flood (city plan)
description: Nairobi's own flood plan, lighter than the stock one.
default_severity: severe
escalation:
  ring0_radius_km: 80
  ring_intervals: [15m, 1h]
claim_acceptance_timeout: 10m
requests:
  - resource: swift-water-rescue-team
    quantity: 3
    priority: critical
    needed_within: 2h
  - resource: hydrological-forecast
    quantity: 1
    priority: high
    needed_within: 1h
"""


def test_admin_uploads_a_city_playbook_that_replaces_the_stock_one_for_that_city(
    client: TestClient, world: World
) -> None:
    nairobi = world.city_ids["nairobi"]
    r = client.put(
        f"/api/v1/cities/{nairobi}/playbooks/flood",
        json={"source": OWN_FLOOD},
        headers=world.headers("admin"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["playbook"]["escalation"]["ring_intervals"] == ["15m", "1h"]

    listed = client.get("/api/v1/playbooks", headers=world.headers("manager", "nairobi")).json()
    flood = next(p for p in listed if p["incident_type"] == "flood")
    assert (flood["origin"], flood["request_count"]) == ("city", 2)
    other = client.get("/api/v1/playbooks", headers=world.headers("manager", "thika")).json()
    assert next(p for p in other if p["incident_type"] == "flood")["origin"] == "stock"

    r = client.post(
        "/api/v1/incidents",
        json={"incident_type": "flood", "title": "F", "playbook": "flood"},
        headers=world.headers("manager", "nairobi"),
    )
    assert r.status_code == 201, r.text
    assert [q["resource"] for q in r.json()["requests"]] == [
        "swift-water-rescue-team",
        "hydrological-forecast",
    ]
    # Machakos (~56 km) is inside this playbook's 80 km first ring.
    inbox = client.get("/api/v1/requests", headers=world.headers("responder", "machakos")).json()
    assert inbox["count"] == 2


def test_invalid_playbook_upload_is_422_listing_each_problem_with_its_line(
    client: TestClient, world: World
) -> None:
    broken = OWN_FLOOD.replace("swift-water-rescue-team", "swift-water-rescue").replace(
        "needed_within: 1h", "needed_within: soon"
    )
    r = client.put(
        f"/api/v1/cities/{world.city_ids['nairobi']}/playbooks/flood",
        json={"source": broken},
        headers=world.headers("admin"),
    )
    assert r.status_code == 422
    problems = r.json()["detail"]
    by_line = {p["line"]: p["msg"] for p in problems}
    assert "swift-water-rescue-team" in by_line[10]  # the close match is suggested
    assert "soon" in by_line[17]
    nothing = client.get("/api/v1/playbooks", headers=world.headers("manager", "nairobi")).json()
    assert next(p for p in nothing if p["incident_type"] == "flood")["origin"] == "stock"


def test_only_admins_upload_playbooks(client: TestClient, world: World) -> None:
    r = client.put(
        f"/api/v1/cities/{world.city_ids['nairobi']}/playbooks/flood",
        json={"source": OWN_FLOOD},
        headers=world.headers("manager", "nairobi"),
    )
    assert r.status_code == 403


def test_unknown_playbook_is_422_naming_the_known_ones(client: TestClient, world: World) -> None:
    r = client.post(
        "/api/v1/incidents",
        json={"incident_type": "flood", "title": "F", "playbook": "tsunami"},
        headers=world.headers("manager", "nairobi"),
    )
    assert r.status_code == 422
    assert "earthquake" in r.json()["detail"]


def test_every_stock_playbook_declares_and_raises_all_its_requests(
    client: TestClient, world: World
) -> None:
    for path in sorted(stock_dir().glob("*.yaml")):
        r = client.post(
            "/api/v1/incidents",
            json={"incident_type": path.stem, "title": path.stem, "playbook": path.stem},
            headers=world.headers("manager", "nairobi"),
        )
        assert r.status_code == 201, (path.stem, r.text)
        playbook = client.get(
            f"/api/v1/playbooks/{path.stem}", headers=world.headers("observer", "thika")
        ).json()["playbook"]
        assert len(r.json()["requests"]) == len(playbook["requests"])


def test_resource_catalogue_is_listed_and_filtered(client: TestClient, world: World) -> None:
    info = client.get(
        "/api/v1/resources",
        params={"kind": "information"},
        headers=world.headers("observer", "thika"),
    ).json()
    assert info and all(r["kind"] == "information" for r in info)
    assert any(
        r["id"] == "gis-analyst"
        for r in client.get(
            "/api/v1/resources", params={"q": "gis"}, headers=world.headers("observer", "thika")
        ).json()
    )


def test_cli_playbooks_check_reports_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "flood.yaml"
    bad.write_text(OWN_FLOOD.replace("quantity: 3", "quantity: 0"))
    r = subprocess.run(
        [sys.executable, "-m", "service.cli", "playbooks", "check", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1
    assert f"{bad}:11:" in r.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "service.cli", "playbooks", "check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert "8 playbook(s) valid, 0 problem(s)" in ok.stdout


# --- hostile uploads ----------------------------------------------------------------------------

#: Any hostile upload is answered within this, through the whole app, on a loaded machine:
#: a guard against unbounded work (the billion laughs took 29 s before), not a speed figure
#: (each answer's time is printed; alone they take milliseconds to a fifth of a second).
ANSWER_BOUND_S = 10.0


PLAYBOOK_BODY_CAP = BODY_CAPS[("PUT", "/cities/{city_id}/playbooks/{incident_type}")]


def _body(source: str) -> bytes:
    # Encoded here, ASCII-escaped, so lone surrogates travel as JSON escapes.
    return json.dumps({"source": source}).encode()


def _upload(client: TestClient, world: World, source: str) -> tuple[Response, float]:
    body = _body(source)
    started = time.perf_counter()
    r = client.put(
        f"/api/v1/cities/{world.city_ids['nairobi']}/playbooks/flood",
        content=body,
        headers={**world.headers("admin"), "Content-Type": "application/json"},
    )
    return r, time.perf_counter() - started


def _origin_of_flood(client: TestClient, world: World) -> str:
    listed = client.get("/api/v1/playbooks", headers=world.headers("manager", "nairobi")).json()
    origin: str = next(p for p in listed if p["incident_type"] == "flood")["origin"]
    return origin


@pytest.mark.parametrize("hostile", HOSTILE, ids=[hostile.name for hostile in HOSTILE])
def test_hostile_upload_is_4xx_with_detail_in_bounded_time_and_stores_nothing(
    client: TestClient, world: World, hostile: Hostile
) -> None:
    r, elapsed = _upload(client, world, hostile.text)

    print(f"{hostile.name}: {r.status_code} in {elapsed * 1000:.1f} ms: {r.text[:160]}")
    assert r.status_code == hostile.status, r.text[:500]
    detail = r.json()["detail"]
    # A body over the route's cap is refused before it is read, so before the parse.
    over_cap = len(_body(hostile.text)) > PLAYBOOK_BODY_CAP
    message = "larger than this route's limit" if over_cap else hostile.message
    assert message in json.dumps(detail, ensure_ascii=False)
    assert elapsed < ANSWER_BOUND_S
    assert _origin_of_flood(client, world) == "stock"


def test_billion_laughs_upload_is_answered_in_milliseconds(
    client: TestClient, world: World
) -> None:
    text = billion_laughs(8)
    answers = [_upload(client, world, text) for _ in range(5)]

    best = min(elapsed for _, elapsed in answers)
    print(f"billion laughs ({len(text)} bytes) over REST: 422 in {best * 1000:.1f} ms (best of 5)")
    assert {r.status_code for r, _ in answers} == {422}
    assert best < 0.25


def test_upload_over_the_byte_limit_is_413_naming_the_limit(
    client: TestClient, world: World
) -> None:
    r, _ = _upload(client, world, OWN_FLOOD + "#" * LIMITS.max_bytes)

    assert r.status_code == 413
    assert r.json()["detail"] == (
        f"the playbook is {len(OWN_FLOOD) + LIMITS.max_bytes:,} bytes; "
        f"playbooks are limited to {LIMITS.max_bytes:,} bytes"
    )


def test_upload_at_the_byte_limit_is_parsed(client: TestClient, world: World) -> None:
    padded = OWN_FLOOD + "#" * (LIMITS.max_bytes - len(OWN_FLOOD) - 1) + "\n"
    assert len(padded.encode()) == LIMITS.max_bytes

    r, _ = _upload(client, world, padded)

    assert r.status_code == 200, r.text[:500]


@pytest.fixture
def quiet_client(database_url: str, world: World, clock: FakeClock) -> Iterator[TestClient]:
    """An app with no background work (the webhook worker polls the database), so every
    transaction begun is a request's."""
    quiet = app_settings(database_url).model_copy(update={"webhooks_enabled": False})
    with TestClient(create_app(quiet, clock=clock)) as client:
        yield client


def test_hostile_upload_is_refused_before_any_transaction_begins(
    quiet_client: TestClient, world: World
) -> None:
    """The parse runs before the command: a refused document never holds a write transaction.

    Counted against a request that only authenticates (the same token), so the count is the
    transactions the upload itself began, whatever the backend's token lookup does.
    """
    client = quiet_client
    admin = world.headers("admin")
    begun: list[str] = []

    def on_begin(conn: Connection) -> None:
        begun.append(conn.engine.dialect.name)

    # A warm-up request first: an engine's first connection may begin a transaction of its own.
    assert client.get("/api/v1/resources", headers=admin).status_code == 200
    event.listen(Engine, "begin", on_begin)
    try:
        assert client.get("/api/v1/resources", headers=admin).status_code == 200
        authenticate_only = len(begun)
        begun.clear()
        r, _ = _upload(client, world, billion_laughs(8))
        assert r.status_code == 422
        hostile = len(begun)
        begun.clear()
        r, _ = _upload(client, world, OWN_FLOOD)
        assert r.status_code == 200
        valid = len(begun)
    finally:
        event.remove(Engine, "begin", on_begin)

    print(
        f"transactions begun: authenticate only {authenticate_only}, hostile upload "
        f"{hostile}, valid upload {valid}"
    )
    assert hostile == authenticate_only
    assert valid > authenticate_only  # the listener does see the upload's write transaction


def test_generated_bad_uploads_never_answer_5xx_and_stay_fast(
    client: TestClient, world: World
) -> None:
    timings: list[tuple[float, int]] = []

    @settings(max_examples=60, deadline=None, database=None)
    @given(bad_playbooks())
    def upload(text: str) -> None:
        r, elapsed = _upload(client, world, text)
        timings.append((elapsed, r.status_code))
        assert r.status_code in {200, 413, 422}, (r.status_code, r.text[:300], text[:300])
        if r.status_code != 200:
            assert r.json()["detail"]
        assert elapsed < ANSWER_BOUND_S, (elapsed, text[:300])

    upload()

    statuses = sorted({status for _, status in timings})
    print(
        f"{len(timings)} generated uploads answered {statuses}; slowest "
        f"{max(timings)[0] * 1000:.1f} ms"
    )


def test_stored_playbook_the_checks_now_refuse_falls_back_to_stock_and_is_logged(
    client: TestClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """A row accepted before anchors were refused must not break every listing of its city."""
    nairobi = world.city_ids["nairobi"]
    with world.executor.db.write() as session:
        session.add(
            CityPlaybook(
                city_id=nairobi,
                incident_type="flood",
                source=OWN_FLOOD.replace("severity: severe", "severity: &s severe"),
                created_at=datetime.now(UTC),
                updated_at=datetime.now(UTC),
            )
        )

    assert _origin_of_flood(client, world) == "stock"
    r = client.post(
        "/api/v1/incidents",
        json={"incident_type": "flood", "title": "F", "playbook": "flood"},
        headers=world.headers("manager", "nairobi"),
    )
    assert r.status_code == 201, r.text
    stock = client.get("/api/v1/playbooks/flood", headers=world.headers("observer", "thika"))
    assert len(r.json()["requests"]) == len(stock.json()["playbook"]["requests"])
    assert f"city {nairobi}'s playbook 'flood' no longer passes the checks" in caplog.text
