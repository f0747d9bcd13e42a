"""The report pages in real Chromium against a real aidmesh process: the after-action report
draws its three charts with a series per request and per helping city and follows the
incident live; a manager publishes a situation report on /manage and opens its printable
page; the board shows every request's clocks, ticking, to any watcher."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.conftest import Site

DESKTOP = {"width": 1366, "height": 900}


@contextmanager
def signed_in(browser: Any, site: Site, path: str, token: str) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(site.base_url + path)
        page.click("#advanced-sign-in summary")
        page.fill("#token", token)
        page.press("#token", "Enter")
        yield page
        assert errors == [], f"uncaught errors in {path}: {errors}"
    finally:
        context.close()


def _claim(site: Site, request_id: int, city: str, key: str, quantity: int = 1) -> dict[str, Any]:
    claim: dict[str, Any] = site.api(
        "POST",
        f"/requests/{request_id}/claims",
        site.world.token("responder", city),
        json={"quantity": quantity},
        headers={"Idempotency-Key": key},
    )
    return claim


def test_the_report_page_draws_its_charts_and_follows_the_incident(
    browser: Any, site: Site, screenshots: Path
) -> None:
    incident, request = site.power_cut("Kibera substation fire", generators=4)
    thika = site.world.city_ids["thika"]
    _claim(site, request["id"], "thika", "report-page-1", 2)
    observer = site.world.token("observer", "nairobi")

    with signed_in(browser, site, f"/incidents/{incident['id']}/report", observer) as page:
        expect(page.locator("#report-title")).to_have_text(
            "After-action report: Kibera substation fire"
        )
        charts = page.locator("#report-charts")
        for name in ("fill", "claims", "flow"):
            expect(charts.locator(f'svg[data-chart="{name}"]')).to_have_count(1)
        fill = charts.locator(f'svg[data-chart="fill"] [data-series="request-{request["id"]}"]')
        expect(fill).to_have_count(1)
        assert fill.evaluate("el => el.namespaceURI") == "http://www.w3.org/2000/svg"
        for name in ("claims", "flow"):
            expect(
                charts.locator(f'svg[data-chart="{name}"] [data-series="city-{thika}"]')
            ).to_have_count(1)
        expect(
            page.locator(f'#requests-table tr[data-request-id="{request["id"]}"]')
        ).to_contain_text("2/4")
        expect(page.locator("#claims-table tbody tr")).to_have_count(1)

        # Another request and another claim: the report redraws live.
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        second = site.api(
            "POST",
            f"/incidents/{incident['id']}/requests",
            site.world.token("manager", "nairobi"),
            json={"resource": "generator-100kw", "quantity": 1},
        )
        _claim(site, request["id"], "thika", "report-page-2", 1)
        expect(page.locator("#claims-table tbody tr")).to_have_count(2)
        expect(charts.locator('svg[data-chart="fill"] [data-series]')).to_have_count(2)
        thika_row = page.locator(f'#cities-table tr[data-city-id="{thika}"]')
        expect(thika_row.locator("td").nth(2)).to_have_text("3")

        # Thika passes on the new request: the pass is on its row and on Thika's.
        site.api(
            "POST",
            f"/requests/{second['id']}/passes",
            site.world.token("responder", "thika"),
            json={"reason": "all ours are out"},
        )
        passes = page.locator(f'#requests-table tr[data-request-id="{second["id"]}"] td.passes')
        expect(passes).to_contain_text("Thika (ring 0)")
        expect(thika_row.locator("td.pass-count")).to_have_text("1")
        expect(page.locator("#report-figures")).to_contain_text("Passes1")
        shot = screenshots / "report-desktop.png"
        page.screenshot(path=str(shot), full_page=True, animations="disabled", caret="hide")


def test_a_manager_publishes_a_situation_report_and_opens_it(browser: Any, site: Site) -> None:
    incident, request = site.power_cut("Eastlands blackout", generators=3)
    _claim(site, request["id"], "thika", "sitrep-page-1", 2)
    manager = site.world.token("manager", "nairobi")
    observer = site.world.token("observer", "thika")

    with signed_in(browser, site, f"/manage#incident={incident['id']}", manager) as manage:
        expect(manage.locator("#incident-title")).to_have_text("Eastlands blackout")
        manage.click("#sitreps summary")
        expect(manage.locator("#sitrep-list")).to_contain_text("None published yet")
        manage.click("#publish-sitrep")
        first = manage.locator('#sitrep-list li[data-number="1"]')
        expect(first).to_contain_text("Situation report 1")
        # A peer city watching the incident sees the same list, and the printable page.
        listed = site.api("GET", f"/incidents/{incident['id']}/sitreps", observer)
        assert [s["number"] for s in listed["data"]] == [1]
        first.locator("a").click()
        expect(manage.locator("#sign-in, #sitrep-title").first).to_be_visible()
        if manage.locator("#sign-in").count():
            manage.click("#advanced-sign-in summary")
            manage.fill("#token", observer)
            manage.press("#token", "Enter")
        expect(manage.locator("#sitrep-title")).to_have_text(
            "Situation report 1: Eastlands blackout"
        )
        row = manage.locator('#sitrep-totals tr[data-resource="generator-100kw"] td')
        expect(row).to_have_text(["Generator 100 kW", "infrastructure", "3", "3", "2", "0"])


def test_the_board_shows_each_requests_clocks_ticking(browser: Any, site: Site) -> None:
    incident, request = site.power_cut("Industrial area outage", generators=2)
    claim = _claim(site, request["id"], "thika", "clocks-1")
    observer = site.world.token("observer", "thika")

    with signed_in(browser, site, f"/board#incident={incident['id']}", observer) as board:
        row = board.locator(f'#request-list li[data-request-id="{request["id"]}"]')
        raised = row.locator(".clock-raised time[data-since]")
        expect(raised).to_have_count(1)
        expect(row.locator(".clock-first-claim")).to_contain_text("first claim after")
        countdown = row.locator(
            f'.clock-acceptance[data-claim-id="{claim["id"]}"] time[data-until]'
        )
        expect(countdown).to_have_attribute("data-until", claim["expires_at"])
        before = countdown.inner_text()
        expect(countdown).not_to_have_text(before)  # it ticks
        expect(raised).not_to_have_text(raised.inner_text())
        # Accepted: its countdown goes away, live.
        site.api(
            "POST",
            f"/claims/{claim['id']}/status",
            site.world.token("manager", "nairobi"),
            json={"status": "accepted"},
        )
        expect(row.locator(".clock-acceptance")).to_have_count(0)
