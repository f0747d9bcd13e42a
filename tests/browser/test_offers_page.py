"""Offers in real Chromium against a real aidmesh process: a peer city offers a package
on /respond, the requesting manager sees it live on /manage without reloading and
accepts it, the board shows the new claim and the package's remaining units drop on
the roster page."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Site
from tests.browser.test_pages import signed_in

LIVE_WITHIN_MS = 2_000


def test_a_peer_city_offers_a_package_and_the_requesting_manager_accepts_it_live(
    browser: Any, site: Site
) -> None:
    world = site.world
    thika_manager = world.token("manager", "thika")
    nairobi_manager = world.token("manager", "nairobi")
    package = site.api(
        "POST",
        f"/cities/{world.city_ids['thika']}/roster",
        thika_manager,
        json={
            "name": "Pump strike team",
            "items": [{"resource": "high-capacity-pump", "quantity": 6}],
            "readiness_hours": 2,
            "self_sufficiency_days": 3,
        },
    )
    incident, _ = site.power_cut("Pumping station flood", generators=2)
    with (
        signed_in(browser, site, f"/manage#incident={incident['id']}", nairobi_manager) as manage,
        signed_in(browser, site, f"/board#incident={incident['id']}", nairobi_manager) as board,
        signed_in(browser, site, "/roster", thika_manager) as roster,
    ):
        expect(manage.locator("#offers-title")).to_have_text(f"Offers to {incident['title']}")
        card = roster.locator("#package-list li.package").filter(has_text="Pump strike team")
        expect(card.locator("td.remaining")).to_have_text("6")

        with signed_in(browser, site, "/respond", world.token("responder", "thika")) as respond:
            respond.select_option("#offer-incident", str(incident["id"]))
            respond.select_option("#offer-resource", "high-capacity-pump")
            respond.fill("#offer-quantity", "2")
            respond.select_option("#offer-package", str(package["id"]))
            respond.fill("#offer-note", "Two pumps with crews")
            respond.click("#offer-submit")
            mine = respond.locator("#offer-list li.offer")
            expect(mine).to_have_attribute("data-status", "open")

            # The manager's console, open all along, shows it without a reload.
            offer = manage.locator("#offer-list li.offer")
            expect(offer).to_contain_text("Thika offers 2", timeout=LIVE_WITHIN_MS)
            expect(offer).to_contain_text("Two pumps with crews")
            offer.locator("button[data-move=accepted]").click()
            expect(offer).to_have_attribute("data-status", "accepted")
            # The offering city follows its offer live too.
            expect(mine).to_have_attribute("data-status", "accepted", timeout=LIVE_WITHIN_MS)

        # The board shows the new request and Thika's accepted claim, and the offer.
        expect(board.locator("#request-list")).to_contain_text("Thika", timeout=LIVE_WITHIN_MS)
        expect(board.locator("#offer-list li.offer")).to_have_attribute("data-status", "accepted")
        expect(board.locator("#feed")).to_contain_text("offer of 2")
        # The package's remaining units drop on the roster page, live.
        expect(card.locator("td.remaining")).to_have_text("4", timeout=LIVE_WITHIN_MS)
        assert manage.evaluate("window.__sameDocument") is True

    requests = site.api("GET", f"/incidents/{incident['id']}", nairobi_manager)["requests"]
    pumps = [r for r in requests if r["resource"] == "high-capacity-pump"]
    assert [(r["quantity"], r["claimed_quantity"]) for r in pumps] == [(2, 2)]
