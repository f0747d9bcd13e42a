"""Cities' own playbooks through the API, and declaring from a playbook."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from playbooks import stock_dir
from tests.support import World

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
