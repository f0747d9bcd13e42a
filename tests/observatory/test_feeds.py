"""The observatory's public feeds over a scripted run whose clocks are known exactly:
what is published and when, the figures, the licence, the HXL row, no token needed,
only GET, caching, paging and bad input."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.observatory.support import API, DELAY_DAYS, LICENCE, Script, Scripted, scripted_run
from tests.support import FakeClock, World


@pytest.fixture
def run(client: TestClient, world: World, clock: FakeClock) -> Scripted:
    return scripted_run(client, world, clock)


def _feeds(client: TestClient, network_id: int) -> tuple[dict[str, Any], list[list[str]], Any]:
    base = f"{API}/observatory/networks/{network_id}"
    geojson = client.get(f"{base}/incidents.geojson")
    flows = client.get(f"{base}/flows.csv")
    summary = client.get(base)
    for r in (geojson, flows, summary):
        assert r.status_code == 200, r.text
    return geojson.json(), list(csv.reader(io.StringIO(flows.text))), summary.json()


def test_nothing_is_published_before_the_delay_and_the_incident_is_at_the_delay(
    client: TestClient, clock: FakeClock, run: Scripted
) -> None:
    clock.now = run.closed_at + timedelta(days=DELAY_DAYS) - timedelta(seconds=1)
    geojson, rows, summary = _feeds(client, run.network_id)
    assert geojson["features"] == [] and geojson["incident_count"] == 0
    assert rows[2:] == []
    assert summary["incident_count"] == 0 and summary["aid_by_city"] == []

    clock.now = run.closed_at + timedelta(days=DELAY_DAYS)
    geojson, rows, summary = _feeds(client, run.network_id)
    assert [f["id"] for f in geojson["features"]] == [run.published]
    assert summary["incident_count"] == 1


def test_the_published_incident_carries_its_figures_and_the_licence(
    client: TestClient, clock: FakeClock, run: Scripted
) -> None:
    clock.now = run.closed_at + timedelta(days=30)
    geojson, _, _ = _feeds(client, run.network_id)
    assert geojson["type"] == "FeatureCollection" and geojson["licence"] == LICENCE
    (feature,) = geojson["features"]
    assert feature["geometry"] == {"type": "Point", "coordinates": [37.1, -1.3]}
    assert feature["properties"] == {
        "incident_id": run.published,
        "incident_type": "flood",
        "severity": "extreme",
        "requesting_city": "Nairobi",
        "declared_at": "2026-02-12T08:00:00Z",
        "closed_at": "2026-02-12T10:00:00Z",
        "request_count": 2,
        "units_requested": 5,
        "units_claimed": 4,  # Thika 2 + 1, Machakos 1
        "units_on_site": 4,
        "helping_city_count": 2,
        "first_claim_p50_s": 600.0,  # 10 and 20 minutes: nearest-rank median
        "fill_p50_s": 3000.0,  # the analyst, on site 50 minutes after the request
        "fill_rate": 0.5,
        "licence": LICENCE,
    }


def test_the_flows_csv_has_an_hxl_row_and_names_no_city_that_did_not_opt_in(
    client: TestClient, clock: FakeClock, run: Scripted
) -> None:
    clock.now = run.closed_at + timedelta(days=30)
    geojson, rows, summary = _feeds(client, run.network_id)
    header, tags, *data = rows
    assert header[:4] == ["incident_id", "incident_type", "helping_city", "requesting_city"]
    assert all(tag.startswith("#") for tag in tags) and len(tags) == len(header)
    flows = [dict(zip(header, row, strict=True)) for row in data]
    assert [(f["resource"], f["helping_city"], f["units"], f["units_on_site"]) for f in flows] == [
        ("high-capacity-pump", "Thika", "2", "2"),
        ("high-capacity-pump", "other cities", "1", "1"),
        ("gis-analyst", "Thika", "1", "1"),
    ]
    assert {f["licence"] for f in flows} == {LICENCE}
    assert {f["requesting_city"] for f in flows} == {"Nairobi"}
    assert [f["request_first_claim_s"] for f in flows] == ["600", "600", "1200"]
    assert [f["request_fill_s"] for f in flows] == ["", "", "3000"]
    # The two feeds agree: the units of the flows are the incident's units claimed.
    (feature,) = geojson["features"]
    assert sum(int(f["units"]) for f in flows) == feature["properties"]["units_claimed"]
    assert summary["aid_by_city"] == [
        {"city": "Nairobi", "units_given": 0, "units_received": 4},
        {"city": "Thika", "units_given": 3, "units_received": 0},
        {"city": "other cities", "units_given": 1, "units_received": 0},
    ]
    assert summary["incidents_by_type"] == [{"incident_type": "flood", "incident_count": 1}]
    assert summary["fill_by_month"] == [
        {"month": "2026-02", "request_count": 2, "filled_count": 1, "fill_p50_s": 3000.0}
    ]


def test_exercises_opted_out_cities_and_active_incidents_never_appear(
    client: TestClient, world: World, clock: FakeClock, run: Scripted
) -> None:
    clock.now = run.closed_at + timedelta(days=30)
    geojson, _, _ = _feeds(client, run.network_id)
    ids = {f["id"] for f in geojson["features"]}
    assert ids == {run.published}
    assert not ids & {run.exercise, run.opted_out, run.active}
    base = f"{API}/observatory/networks/{run.network_id}"
    texts = [client.get(f"{base}{suffix}").text for suffix in ("", "/incidents.geojson")]
    texts += [client.get(f"{base}/flows.csv").text, client.get(f"{API}/observatory").text]
    assert not [t for t in texts if "Machakos" in t]

    # Opting out takes a city's incidents off at once; opting back in brings them back.
    Script(client, world, clock).opt_in("nairobi", False)
    assert client.get(f"{base}/incidents.geojson").json()["features"] == []
    Script(client, world, clock).opt_in("nairobi", True)
    assert len(client.get(f"{base}/incidents.geojson").json()["features"]) == 1


def test_public_feeds_need_no_token_are_cacheable_and_answer_only_get(
    client: TestClient, clock: FakeClock, run: Scripted
) -> None:
    clock.now = run.closed_at + timedelta(days=30)
    base = f"{API}/observatory/networks/{run.network_id}"
    paths = [f"{API}/observatory", base, f"{base}/incidents.geojson", f"{base}/flows.csv"]
    for path in paths:
        r = client.get(path)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["cache-control"] == "public, max-age=300"
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            assert client.request(method, path).status_code == 405, (method, path)
    assert client.get(f"{base}/incidents.geojson").headers["content-type"] == (
        "application/geo+json"
    )
    assert client.get(f"{base}/flows.csv").headers["content-type"].startswith("text/csv")
    (listed,) = client.get(f"{API}/observatory").json()
    assert listed == {
        "network_id": run.network_id,
        "slug": "kenya",
        "name": "Kenya",
        "licence": LICENCE,
        "publication_delay_days": DELAY_DAYS,
        "cities": ["Mombasa", "Nairobi", "Thika"],
    }


def test_feeds_page_by_incident_with_a_link_to_the_next_page(
    client: TestClient, world: World, clock: FakeClock, run: Scripted
) -> None:
    script = Script(client, world, clock)
    later = script.declare("mombasa")
    script.close("mombasa", later)
    clock.now += timedelta(days=30)
    base = f"{API}/observatory/networks/{run.network_id}"
    first = client.get(f"{base}/incidents.geojson", params={"limit": 1})
    assert [f["id"] for f in first.json()["features"]] == [run.published]
    assert first.json()["incident_count"] == 2
    link = first.headers["link"]
    assert link == f'<{base}/incidents.geojson?limit=1&offset=1>; rel="next"'
    second = client.get(f"{base}/incidents.geojson", params={"limit": 1, "offset": 1})
    assert [f["id"] for f in second.json()["features"]] == [later]
    assert "link" not in second.headers
    csv_page = client.get(f"{base}/flows.csv", params={"limit": 1, "offset": 1})
    assert csv_page.text.count("\r\n") == 2  # header and HXL rows: Mombasa's got no aid
    assert "link" not in csv_page.headers


def test_a_network_without_an_observatory_or_unknown_is_404(
    client: TestClient, world: World
) -> None:
    for network_id in (world.network_ids["germany"], 2_147_480_000):
        for suffix in ("", "/incidents.geojson", "/flows.csv"):
            r = client.get(f"{API}/observatory/networks/{network_id}{suffix}")
            assert r.status_code == 404, r.text
            assert r.json()["detail"] == f"network {network_id} has no observatory"
    assert client.get(f"{API}/observatory").json() == []


BAD_SETTINGS: list[dict[str, Any]] = [
    {"licence": "", "publication_delay_days": 7},
    {"licence": "CC BY 4.0", "publication_delay_days": 7},
    {"licence": "x" * 65, "publication_delay_days": 7},
    {"licence": "<script>", "publication_delay_days": 7},
    {"licence": 4, "publication_delay_days": 7},
    {"licence": "CC-BY-4.0", "publication_delay_days": -1},
    {"licence": "CC-BY-4.0", "publication_delay_days": 3651},
    {"licence": "CC-BY-4.0", "publication_delay_days": "7"},
    {"licence": "CC-BY-4.0", "publication_delay_days": True},
    {"licence": "CC-BY-4.0", "publication_delay_days": 1.5},
    {"licence": "CC-BY-4.0"},
    {"licence": "CC-BY-4.0", "publication_delay_days": 7, "network_id": 2},
]
BAD_OPT_INS: list[Any] = [{}, {"opted_in": "yes"}, {"opted_in": 1}, {"opted_in": None}, []]


def test_bad_settings_are_422_and_change_nothing(client: TestClient, world: World) -> None:
    kenya = world.network_ids["kenya"]
    nairobi = world.city_ids["nairobi"]
    admin = world.headers("admin")
    for body in BAD_SETTINGS:
        r = client.put(f"{API}/networks/{kenya}/observatory", json=body, headers=admin)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["detail"]
    for body in BAD_OPT_INS:
        r = client.put(f"{API}/cities/{nairobi}/observatory", json=body, headers=admin)
        assert r.status_code == 422, (body, r.text)
    assert client.get(f"{API}/observatory").json() == []
    r = client.get(f"{API}/cities/{nairobi}/observatory", headers=admin)
    assert r.json()["opted_in"] is False
    r = client.put(
        f"{API}/networks/2147480000/observatory",
        json={"licence": "CC-BY-4.0", "publication_delay_days": 0},
        headers=admin,
    )
    assert r.status_code == 404 and r.json()["detail"] == "network 2147480000 not found"


@pytest.mark.parametrize(
    "params",
    [{"limit": "0"}, {"limit": "5001"}, {"limit": "x"}, {"offset": "-1"}, {"limit": "1e3"}],
)
def test_bad_paging_is_422(client: TestClient, world: World, params: dict[str, str]) -> None:
    for feed in ("incidents.geojson", "flows.csv"):
        url = f"{API}/observatory/networks/{world.network_ids['kenya']}/{feed}"
        r = client.get(url, params=params)
        assert r.status_code == 422, (feed, params, r.text)
        assert r.json()["detail"]


def test_a_city_reads_and_sets_only_its_own_opt_in(client: TestClient, world: World) -> None:
    nairobi = world.city_ids["nairobi"]
    path = f"{API}/cities/{nairobi}/observatory"
    assert client.get(path, headers=world.headers("manager", "thika")).status_code == 403
    assert client.get(path, headers=world.headers("responder", "nairobi")).status_code == 403
    r = client.put(path, json={"opted_in": True}, headers=world.headers("manager", "nairobi"))
    assert r.status_code == 200 and r.json()["opted_in"] is True
    assert client.get(path, headers=world.headers("manager", "nairobi")).json()["opted_in"]
