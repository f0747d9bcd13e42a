"""The public observatory page in real Chromium against a real aidmesh process: without
any sign-in it draws its three charts as inline SVG, with the series the feeds give,
links its feeds and shows the network's licence."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Site, copy_to_docs
from tests.browser.test_pages import DESKTOP


def _helped_flood(site: Site) -> int:
    """Kenya publishes at once under CC-BY-4.0; Nairobi and Thika opted in; Thika brought
    two pumps on site to a Nairobi flood, now closed."""
    world = site.world
    admin, nairobi = world.token("admin"), world.token("manager", "nairobi")
    thika = world.token("responder", "thika")
    site.api(
        "PUT",
        f"/networks/{world.network_ids['kenya']}/observatory",
        admin,
        json={"licence": "CC-BY-4.0", "publication_delay_days": 0},
    )
    for city in ("nairobi", "thika"):
        site.api(
            "PUT", f"/cities/{world.city_ids[city]}/observatory", admin, json={"opted_in": True}
        )
    incident = site.api(
        "POST", "/incidents", nairobi, json={"incident_type": "flood", "title": "River flood"}
    )
    request = site.api(
        "POST",
        f"/incidents/{incident['id']}/requests",
        nairobi,
        json={"resource": "high-capacity-pump", "quantity": 2},
    )
    claim = site.api(
        "POST",
        f"/requests/{request['id']}/claims",
        thika,
        json={"quantity": 2},
        headers={"Idempotency-Key": "observatory-page"},
    )
    site.api("POST", f"/claims/{claim['id']}/status", nairobi, json={"status": "accepted"})
    for status in ("en_route", "on_site"):
        site.api("POST", f"/claims/{claim['id']}/status", thika, json={"status": status})
    site.api("POST", f"/incidents/{incident['id']}/close", nairobi)
    return int(incident["id"])


def _bars(page: Any, chart: str) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = page.eval_on_selector_all(
        f"#{chart} rect.bar",
        "bars => bars.map(b => [b.dataset.series, b.dataset.label, b.dataset.value])",
    )
    return found


def test_the_observatory_draws_its_charts_without_sign_in(
    browser: Any, site: Site, screenshots: Path
) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(site.base_url + "/observatory")
        expect(page.locator("#observatory-empty")).to_have_text(
            "No network publishes an observatory yet."
        )
        _helped_flood(site)
        page.goto(site.base_url + "/observatory?network=kenya")
        expect(page.locator("#main h1")).to_have_text("Open-data observatory")
        expect(page.locator("#sign-in")).to_have_count(0)
        expect(page.locator("#observatory-count")).to_contain_text("1 incident closed up to")
        expect(page.locator("#chart-aid")).to_be_visible()
        assert _bars(page, "chart-aid") == [
            ["given", "Nairobi", "0"],
            ["received", "Nairobi", "2"],
            ["given", "Thika", "2"],
            ["received", "Thika", "0"],
        ]
        month = datetime.now(UTC).strftime("%Y-%m")
        fill = _bars(page, "chart-fill")
        assert [(series, label) for series, label, _ in fill] == [("fill", month)]
        assert float(fill[0][2]) >= 0  # hours from raising to both pumps on site (a value)
        assert _bars(page, "chart-types") == [["incidents", "flood", "1"]]
        expect(page.locator("#chart-aid .legend")).to_have_count(2)
        expect(page.locator("#observatory-licence")).to_contain_text("licensed CC-BY-4.0")
        geojson = page.locator("#feed-geojson").get_attribute("href")
        csv_link = page.locator("#feed-csv").get_attribute("href")
        kenya = site.world.network_ids["kenya"]
        assert geojson == f"/api/v1/observatory/networks/{kenya}/incidents.geojson"
        assert csv_link == f"/api/v1/observatory/networks/{kenya}/flows.csv"
        shot = screenshots / "observatory.png"
        page.screenshot(path=str(shot), full_page=True)
        copy_to_docs([shot])
        assert errors == []
    finally:
        context.close()
