"""The board and both consoles in real Chromium against a real aidmesh process.

A manager declares in one browser context, a responder in a second sees it arrive
and claims, and the board in a third follows within a second; the board survives
a server restart without a reload and without losing an event; screenshots of the
three pages at desktop and phone width are written for the README.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from playbooks import stock_dir
from service.commands import claims as claim_commands
from service.domain.actors import Actor, Role
from service.models import ClaimCreate
from tests.browser.conftest import Site

DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
LIVE_WITHIN_MS = 1_000


@contextmanager
def signed_in(
    browser: Any,
    site: Site,
    path: str,
    token: str,
    viewport: dict[str, int] = DESKTOP,
    init_script: str | None = None,
    timezone_id: str | None = None,
) -> Iterator[Page]:
    """A fresh browser context on `path`, signed in with `token` and live; `init_script`
    runs in the page before its own scripts; `timezone_id` is the viewer's zone."""
    context = browser.new_context(viewport=viewport, timezone_id=timezone_id)
    if init_script is not None:
        context.add_init_script(init_script)
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(site.base_url + path)
        page.click("#advanced-sign-in summary")
        page.fill("#token", token)
        page.press("#token", "Enter")
        expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=10_000)
        # Set after the page loaded: still there later proves nothing reloaded the page.
        page.evaluate("window.__sameDocument = true")
        yield page
        assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
        assert errors == [], f"uncaught errors in {path}: {errors}"
    finally:
        context.close()


def feed_seqs(page: Page) -> list[int]:
    seqs: list[int] = page.eval_on_selector_all(
        "#feed li", "items => items.map(i => +i.dataset.seq)"
    )
    return sorted(seqs)


def incident_by_title(site: Site, token: str, title: str) -> dict[str, Any]:
    found = site.api("GET", "/incidents?status=active", token)["data"]
    match = next(i for i in found if i["title"] == title)
    detail: dict[str, Any] = site.api("GET", f"/incidents/{match['id']}", token)
    return detail


def request_for(detail: dict[str, Any], resource: str) -> dict[str, Any]:
    return next(r for r in detail["requests"] if r["resource"] == resource)


def test_declare_claim_and_progress_reach_every_page_live(browser: Any, site: Site) -> None:
    world = site.world
    manager, responder = world.token("manager", "nairobi"), world.token("responder", "thika")
    observer = world.token("observer", "nairobi")
    with (
        signed_in(browser, site, "/board", observer) as board,
        signed_in(browser, site, "/respond", responder) as respond,
        signed_in(browser, site, "/manage", manager) as manage,
    ):
        # The manager declares from the flood playbook, after looking at what it raises.
        if manage.locator("#declare").get_attribute("open") is None:
            manage.click("#declare summary")
        manage.select_option("#declare-playbook", "flood")
        expect(manage.locator("#playbook-preview")).to_contain_text("It raises 9 requests")
        expect(manage.locator("#playbook-preview")).to_contain_text("Swift-water rescue team")
        manage.fill("#declare-title", "Mathare valley flash flood")
        manage.check("#declare-exercise")
        manage.click("#declare-form button[type=submit]")
        expect(manage.locator("#incident-title")).to_have_text("Mathare valley flash flood")

        incident = incident_by_title(site, manager, "Mathare valley flash flood")
        assert incident["exercise"] is True
        rescue = request_for(incident, "swift-water-rescue-team")
        card = f'#inbox li[data-request-id="{rescue["id"]}"]'
        row = f'#request-list li[data-request-id="{rescue["id"]}"]'

        # The responder's inbox and the board pick it up without a reload.
        expect(respond.locator(card)).to_be_visible(timeout=5_000)
        expect(board.locator("#incident-list")).to_contain_text("Mathare valley flash flood")
        board.click(f'#incident-list li[data-incident-id="{incident["id"]}"] button')
        expect(board.locator(row)).to_have_class("request attention")
        expect(board.locator(f"{row} .bar")).to_have_attribute("data-committed", "0")

        # Thika claims one of the two teams; the board follows within a second.
        respond.fill(f"{card} input.qty", "1")
        respond.click(f"{card} form.claim-form button[type=submit]")
        expect(board.locator(f"{row} .bar")).to_have_attribute(
            "data-claimed", "1", timeout=LIVE_WITHIN_MS
        )
        expect(board.locator("#feed")).to_contain_text(
            "Thika claimed 1 team of Swift-water rescue team", timeout=LIVE_WITHIN_MS
        )
        expect(board.locator(row)).to_contain_text("Critical: 1 still unclaimed")
        expect(respond.locator("#my-claims")).to_contain_text("Waiting for Nairobi to accept")

        # Nairobi accepts; Thika reports en route; each step shows on the board at once.
        claim_row = manage.locator(
            f'li[data-request-id="{rescue["id"]}"] tr[data-status="claimed"]'
        )
        claim_row.get_by_role("button", name="Accept").click()
        expect(board.locator(f"{row} .bar")).to_have_attribute(
            "data-accepted", "1", timeout=LIVE_WITHIN_MS
        )
        respond.locator("#my-claims").get_by_role("button", name="En route").click()
        # Setting off asks when the team arrives.
        set_off = respond.locator("dialog.ask")
        set_off.get_by_label("Expected arrival").fill(
            respond.evaluate(
                "() => { const d = new Date(Date.now() + 3600e3);"
                " return new Date(d - d.getTimezoneOffset() * 6e4).toISOString().slice(0, 16); }"
            )
        )
        set_off.get_by_role("button", name="Set off").click()
        expect(board.locator(f"{row} .bar")).to_have_attribute(
            "data-en-route", "1", timeout=LIVE_WITHIN_MS
        )
        expect(manage.locator(f'li[data-request-id="{rescue["id"]}"] .bar')).to_have_attribute(
            "data-en-route", "1", timeout=LIVE_WITHIN_MS
        )

        # Every event of the incident is in the board's feed, once.
        seqs = site.event_seqs(incident["id"], observer)
        expect(board.locator("#feed li")).to_have_count(len(seqs))
        assert feed_seqs(board) == seqs


def test_consoles_raise_answer_cancel_and_close(browser: Any, site: Site) -> None:
    world = site.world
    manager, responder = world.token("manager", "nairobi"), world.token("responder", "thika")
    incident = site.api(
        "POST",
        "/incidents",
        manager,
        json={"incident_type": "heatwave", "title": "Heatwave in Nairobi", "severity": "moderate"},
    )
    briefing = site.api(
        "POST",
        f"/incidents/{incident['id']}/requests",
        manager,
        json={"resource": "weather-forecast-briefing", "quantity": 1, "priority": "high"},
    )
    at = f"#incident={incident['id']}"
    with (
        signed_in(browser, site, f"/board{at}", world.token("observer", "nairobi")) as board,
        signed_in(browser, site, "/respond", responder) as respond,
        signed_in(browser, site, f"/manage{at}", manager) as manage,
    ):
        # An extra request, raised through the form, reaches Thika's inbox.
        manage.click("#incident-detail details.raise summary")
        manage.select_option("#raise-resource", "cooling-centre")
        manage.fill("#raise-quantity", "2")
        manage.select_option("#raise-priority", "high")
        manage.fill("#raise-report-to", "Kenyatta International Convention Centre")
        manage.click("#raise-form button[type=submit]")
        expect(respond.locator("#inbox")).to_contain_text("Cooling centre")
        cooling = next(
            r
            for r in site.api("GET", f"/incidents/{incident['id']}", manager)["requests"]
            if r["resource"] == "cooling-centre"
        )

        # An information request: claimed, accepted from the queue, answered.
        respond.click(
            f'#inbox li[data-request-id="{briefing["id"]}"] form.claim-form button[type=submit]'
        )
        manage.locator("#to-accept").get_by_role("button", name="Accept").click()
        answer = respond.locator("#my-claims textarea")
        answer.fill("Highs of 34 °C until Friday; no rain expected.")
        respond.locator("#my-claims").get_by_role("button", name="Send answer").click()
        expect(manage.locator(f'li[data-request-id="{briefing["id"]}"] .answer')).to_have_text(
            "Highs of 34 °C until Friday; no rain expected."
        )
        briefing_row = board.locator(f'#request-list li[data-request-id="{briefing["id"]}"]')
        expect(briefing_row.locator(".chip")).to_have_text("Answered")

        # Cancelling asks first; so does closing. Both show everywhere at once.
        cooling_card = manage.locator(f'li[data-request-id="{cooling["id"]}"]')
        cooling_card.get_by_role("button", name="Cancel request").click()
        manage.locator("dialog.confirm").get_by_role("button", name="Cancel request").click()
        cooling_row = board.locator(f'#request-list li[data-request-id="{cooling["id"]}"]')
        expect(cooling_row.locator(".chip")).to_have_text("Cancelled", timeout=LIVE_WITHIN_MS)
        expect(respond.locator(f'#inbox li[data-request-id="{cooling["id"]}"]')).to_have_count(0)

        manage.click("#close-incident")
        manage.locator("dialog.confirm").get_by_role("button", name="Close incident").click()
        expect(
            board.locator(f'#closed-list li[data-incident-id="{incident["id"]}"]')
        ).to_contain_text("Closed", timeout=LIVE_WITHIN_MS)
        expect(manage.locator("#close-incident")).to_have_count(0)


def test_board_resumes_after_a_server_restart_without_losing_events(
    browser: Any, site: Site
) -> None:
    world = site.world
    observer = world.token("observer", "nairobi")
    incident, generators = site.power_cut("Eastlands substation fire", generators=3)
    row = f'#request-list li[data-request-id="{generators["id"]}"]'
    with signed_in(browser, site, f"/board#incident={incident['id']}", observer) as board:
        expect(board.locator("#incident-title")).to_have_text("Eastlands substation fire")
        expect(board.locator("#feed li")).to_have_count(2)

        site.server.stop()
        expect(board.locator("#conn")).to_have_attribute("data-state", "reconnecting")

        # While the service is down, Thika claims (straight into the database).
        thika = Actor(role=Role.RESPONDER, city_id=world.city_ids["thika"], token_id=None)
        site.clock.now = datetime.now(UTC)
        site.executor.run_sync(
            thika,
            claim_commands.claim_request,
            generators["id"],
            ClaimCreate(quantity=2),
            "claimed-while-down",
        )

        site.server.start()
        expect(board.locator("#conn")).to_have_attribute("data-state", "live", timeout=20_000)
        expect(board.locator(f"{row} .bar")).to_have_attribute("data-claimed", "2")

        # And live events flow again after the resume.
        site.api(
            "POST",
            f"/requests/{generators['id']}/claims",
            world.token("responder", "thika"),
            json={"quantity": 1},
            headers={"Idempotency-Key": "after-restart"},
        )
        expect(board.locator(f"{row} .bar")).to_have_attribute(
            "data-claimed", "3", timeout=LIVE_WITHIN_MS
        )
        seqs = site.event_seqs(incident["id"], observer)
        assert seqs == [1, 2, 3, 4]
        expect(board.locator("#feed li")).to_have_count(len(seqs))
        assert feed_seqs(board) == seqs


def _stage_a_busy_flood(site: Site) -> dict[str, Any]:
    """A flood under way: claims in every state, and rings already widened past Nairobi.

    Nairobi's own flood plan widens after one second instead of half an hour, so the
    service's scheduler escalates for real while the page loads.
    """
    world = site.world
    manager = world.token("manager", "nairobi")
    thika, machakos = world.token("responder", "thika"), world.token("responder", "machakos")
    munich = world.token("responder", "munich")
    plan = (stock_dir() / "flood.yaml").read_text()
    assert "ring_intervals: [30m, 2h]" in plan
    site.api(
        "PUT",
        f"/cities/{world.city_ids['nairobi']}/playbooks/flood",
        world.token("admin"),
        json={"source": plan.replace("ring_intervals: [30m, 2h]", "ring_intervals: [1s, 1h]")},
    )
    detail = site.api(
        "POST",
        "/incidents",
        manager,
        json={
            "incident_type": "flood",
            "playbook": "flood",
            "title": "Nairobi River flood",
            "severity": "extreme",
            "description": "Nairobi River and Ngong River over their banks after 36 hours of "
            "rain; Kibera, Mukuru and the Kirinyaga Road area flooded.",
        },
    )

    def claim(token: str, resource: str, quantity: int, key: str) -> dict[str, Any]:
        request = request_for(detail, resource)
        made: dict[str, Any] = site.api(
            "POST",
            f"/requests/{request['id']}/claims",
            token,
            json={"quantity": quantity},
            headers={"Idempotency-Key": key},
        )
        return made

    def move(token: str, claim_id: int, status: str) -> None:
        site.api("POST", f"/claims/{claim_id}/status", token, json={"status": status})

    rescue = claim(thika, "swift-water-rescue-team", 1, "shot-1")
    sandbags = claim(thika, "sandbags", 15, "shot-2")
    pumps = claim(thika, "high-capacity-pump", 2, "shot-3")
    claim(thika, "cots", 120, "shot-4")
    for made in (rescue, sandbags, pumps):
        move(manager, made["id"], "accepted")
    move(thika, rescue["id"], "en_route")
    move(thika, sandbags["id"], "en_route")
    move(thika, sandbags["id"], "on_site")

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        detail = site.api("GET", f"/incidents/{detail['id']}", manager)
        if all(r["ring"] >= 1 for r in detail["requests"] if r["remaining_quantity"]):
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the scheduler did not widen the rings")
    claim(machakos, "shelter-manager", 2, "shot-5")
    claim(munich, "gis-analyst", 1, "shot-6")
    return detail


def test_screenshots_of_the_three_pages_at_desktop_and_phone_width(
    browser: Any, site: Site, screenshots: Any
) -> None:
    world = site.world
    incident = _stage_a_busy_flood(site)
    pages = {
        "board": (f"/board#incident={incident['id']}", world.token("observer", "nairobi")),
        "respond": ("/respond", world.token("responder", "thika")),
        "manage": (f"/manage#incident={incident['id']}", world.token("manager", "nairobi")),
    }
    for width_name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        for name, (path, token) in pages.items():
            with signed_in(browser, site, path, token, viewport) as page:
                if name != "respond":
                    expect(page.locator("#incident-title")).to_have_text("Nairobi River flood")
                else:
                    expect(page.locator("#my-claims")).to_contain_text("Sandbags")
                if name == "board":
                    expect(page.locator("#map svg .city.claimer")).not_to_have_count(0)
                    expect(page.locator("#feed li")).to_have_count(
                        len(site.event_seqs(incident["id"], pages["board"][1]))
                    )
                page.wait_for_timeout(300)
                path_out = screenshots / f"{name}-{width_name}.png"
                page.screenshot(path=str(path_out), animations="disabled", caret="hide")


def test_pages_and_assets_are_served_from_the_package_with_a_strict_policy(site: Site) -> None:
    for path in ("/", "/board", "/respond", "/manage"):
        page = httpx.get(site.base_url + path)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
    script = httpx.get(f"{site.base_url}/static/shell.js")
    assert script.headers["content-type"].startswith("text/javascript")
    for missing in ("/static/nothing.js", "/static/..%2Fmain.py", "/static/routes.py"):
        assert httpx.get(site.base_url + missing).status_code == 404, missing
