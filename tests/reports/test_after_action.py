"""After-action reports of a scripted incident whose clocks are known to the second, on
every backend: the JSON figures, the CSV agreeing with them, the charts' series."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.testclient import TestClient

from service.api.routes_reports import ReportPublic
from tests.library.support import API
from tests.reports.support import Scripted, iso, run_scripted_incident
from tests.support import FakeClock, World


def _report(client: TestClient, world: World, s: Scripted, who: str = "nairobi") -> Any:
    r = client.get(
        f"{API}/incidents/{s.incident_id}/report", headers=world.headers("observer", who)
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_each_requests_clocks_and_rings_are_exact(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    s = run_scripted_incident(client, world, clock)
    report = _report(client, world, s)
    by_id = {q["request_id"]: q for q in report["requests"]}
    thika, machakos = world.city_ids["thika"], world.city_ids["machakos"]

    sandbags = by_id[s.sandbags]
    assert (sandbags["raised_at"], sandbags["first_claim_at"]) == (iso(0), iso(10))
    assert (sandbags["filled_at"], sandbags["all_on_site_at"]) == (iso(10), iso(40))
    assert sandbags["seconds_to_first_claim"] == 600.0
    assert sandbags["seconds_to_fill"] == 600.0
    assert sandbags["seconds_to_all_on_site"] == 2400.0
    assert sandbags["rings"] == [{"ring": 0, "entered_at": iso(0)}]
    assert (sandbags["status"], sandbags["helping_city_ids"]) == ("fulfilled", [thika])

    pump = by_id[s.pump]
    assert (pump["first_claim_at"], pump["filled_at"], pump["all_on_site_at"]) == (
        iso(50),
        iso(50),
        None,
    )
    assert pump["rings"] == [{"ring": 0, "entered_at": iso(0)}, {"ring": 1, "entered_at": iso(30)}]
    assert (pump["status"], pump["claimed_quantity"], pump["escalation_count"]) == ("open", 0, 1)
    assert pump["helping_city_ids"] == [machakos]

    cots = by_id[s.cots]
    assert (cots["first_claim_at"], cots["filled_at"], cots["ended_at"]) == (None, None, iso(61))
    assert cots["status"] == "expired"
    assert [e["ring"] for e in cots["rings"]] == [0, 1]
    assert cots["passes"] == [{"city_id": thika, "ring": 1, "passed_at": iso(45)}]
    assert sandbags["passes"] == pump["passes"] == []


def test_the_whole_incident_is_counted_and_each_city_credited(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    s = run_scripted_incident(client, world, clock)
    report = _report(client, world, s)

    # The route encodes the report itself: it must be exactly the documented shape.
    assert ReportPublic.model_validate(report).model_dump() == report
    assert report["generated_at"] == iso(90)
    assert report["incident"]["declared_at"] == iso(0)
    assert report["counts"] == {
        "requests": 3,
        "claims": 2,
        "escalations": 2,
        "passes": 1,
        "declines": 1,
        "withdrawals": 0,
        "claim_expiries": 0,
        "request_expiries": 1,
        "cancellations": 0,
        "fulfilled": 1,
    }
    assert report["clocks"] == {
        "first_claim_p50_s": 600.0,
        "first_claim_p90_s": 3000.0,
        "fill_p50_s": 2400.0,
        "fill_p90_s": 2400.0,
        "fill_rate": 0.3333,
        "expired_unfilled_count": 1,
        "escalation_count": 2,
    }
    thika, machakos = report["cities"]
    assert (thika["city_name"], thika["units_claimed"], thika["units_on_site"]) == ("Thika", 1, 1)
    assert (thika["first_claim_at"], thika["last_change_at"]) == (iso(10), iso(40))
    assert thika["resources"] == {"sandbags": 1}
    assert (thika["pass_count"], machakos["pass_count"]) == (1, 0)
    assert (machakos["city_name"], machakos["declined_count"], machakos["units_on_site"]) == (
        "Machakos",
        1,
        0,
    )
    claims = {c["claim_id"]: c for c in report["claims"]}
    assert claims[s.thika_claim]["status_at"] == {
        "accepted": iso(20),
        "en_route": iso(20),
        "on_site": iso(40),
    }
    assert claims[s.machakos_claim]["status_at"] == {"declined": iso(55)}
    types = [e["type"] for e in report["timeline"]]
    assert types[0] == "incident.declared"
    assert types.count("request.escalated") == 2
    assert types.count("request.passed") == 1
    assert [e["seq"] for e in report["timeline"]] == list(range(1, len(types) + 1))


def test_the_csv_gives_the_same_figures_as_the_json(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    s = run_scripted_incident(client, world, clock)
    report = _report(client, world, s)
    r = client.get(
        f"{API}/incidents/{s.incident_id}/report.csv", headers=world.headers("observer", "thika")
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))

    def as_csv(q: dict[str, Any]) -> dict[str, str]:
        cells = {k: "" if v is None else str(v) for k, v in q.items()}
        cells["rings"] = ";".join(f"{e['ring']}@{e['entered_at']}" for e in q["rings"])
        cells["passes"] = ";".join(f"{p['city_id']}@{p['passed_at']}" for p in q["passes"])
        cells["helping_city_ids"] = ";".join(str(c) for c in q["helping_city_ids"])
        return cells

    assert len(rows) == 3
    assert rows == [as_csv(q) for q in report["requests"]]
    assert rows[0]["raised_at"] == iso(0)  # ISO 8601 with its offset


def test_the_charts_draw_a_series_per_request_and_per_helping_city(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    s = run_scripted_incident(client, world, clock)
    charts = _report(client, world, s)["charts"]
    thika, machakos = world.city_ids["thika"], world.city_ids["machakos"]

    assert set(charts) == {"fill", "claims", "flow"}
    for name, svg in charts.items():
        assert svg.startswith("<svg ") and f'data-chart="{name}"' in svg
        assert "<script" not in svg
    for request_id in (s.sandbags, s.pump, s.cots):
        assert f'data-series="request-{request_id}"' in charts["fill"]
    for city_id in (thika, machakos):
        assert f'data-series="city-{city_id}"' in charts["claims"]
        assert f'data-series="city-{city_id}"' in charts["flow"]
    assert "Nairobi" in charts["flow"]
    without = client.get(
        f"{API}/incidents/{s.incident_id}/report",
        params={"charts": "false"},
        headers=world.headers("observer", "nairobi"),
    )
    assert without.json()["charts"] == {}


def test_a_report_reads_as_its_incident_does(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    s = run_scripted_incident(client, world, clock)
    for path in (f"/incidents/{s.incident_id}/report", f"/incidents/{s.incident_id}/report.csv"):
        for role in ("manager", "responder", "observer"):
            assert client.get(API + path, headers=world.headers(role, "thika")).status_code == 200
            r = client.get(API + path, headers=world.headers(role, "berlin"))
            assert r.status_code == 404, (path, role, r.text)
        assert client.get(API + path, headers=world.headers("admin")).status_code == 200
        assert client.get(API + path).status_code == 401
