"""The roster page in real Chromium against a real aidmesh process: Thika's manager adds
and edits a package on /roster; a responder of Thika claims a request from it on
/respond, and the package's remaining units drop on the manager's /roster without a
reload; an observer reads the roster but cannot edit it."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Site
from tests.browser.test_pages import signed_in

LIVE_WITHIN_MS = 2_000


def test_a_manager_edits_the_roster_and_a_claim_from_it_shows_live(
    browser: Any, site: Site
) -> None:
    world = site.world
    manager = world.token("manager", "thika")
    responder = world.token("responder", "thika")
    with signed_in(browser, site, "/roster", manager) as roster:
        expect(roster.locator("#roster-title")).to_have_text("Roster of Thika")
        if roster.locator("#add-package").get_attribute("open") is None:
            roster.click("#add-package summary")
        roster.fill("#package-name", "Power strike team")
        roster.select_option("#package-resource", "generator-100kw")
        roster.fill("#package-units", "6")
        roster.fill("#package-readiness", "2")
        roster.fill("#package-cap", "50")
        roster.fill("#package-contact", "Thika utilities desk")
        roster.click("#package-add")
        card = roster.locator("#package-list li.package").filter(has_text="Power strike team")
        expect(card.locator("td.remaining")).to_have_text("3")  # 50% of 6 at once
        package_id = int(card.get_attribute("data-package-id") or 0)

        # The manager lets more go at once: 5 of 6.
        roster.fill(f"#cap-{package_id}", "90")
        roster.click(f"#save-{package_id}")
        expect(card.locator("td.cap")).to_have_text("5")
        expect(card.locator("td.remaining")).to_have_text("5")

        _, request = site.power_cut("Thika substation fire", generators=4)
        with signed_in(browser, site, "/respond", responder) as respond:
            inbox_card = respond.locator(f'#inbox li[data-request-id="{request["id"]}"]')
            expect(inbox_card).to_contain_text("your roster has this")
            respond.fill(f"#qty-{request['id']}", "2")
            respond.select_option(f"#package-{request['id']}", str(package_id))
            respond.click(
                f'#inbox li[data-request-id="{request["id"]}"] form.claim-form button[type=submit]'
            )
            expect(respond.locator("#my-claims")).to_contain_text("Waiting for Nairobi")

            # The manager's roster, open all along, follows without a reload.
            expect(card.locator("td.committed")).to_have_text("2", timeout=LIVE_WITHIN_MS)
            expect(card.locator("td.remaining")).to_have_text("3", timeout=LIVE_WITHIN_MS)
            expect(inbox_card).to_contain_text("Power strike team: 3 left")

            # Withdrawing gives the units back, live as well.
            respond.locator("#my-claims").get_by_role("button", name="Withdraw").click()
            respond.locator("dialog.ask button.primary").click()
            expect(card.locator("td.remaining")).to_have_text("5", timeout=LIVE_WITHIN_MS)

        claims = site.api("GET", f"/requests/{request['id']}/claims", manager)["data"]
        assert [c["package_id"] for c in claims] == [package_id]


def test_an_observer_reads_the_roster_without_editing_it(browser: Any, site: Site) -> None:
    world = site.world
    thika = world.city_ids["thika"]
    site.api(
        "POST",
        f"/cities/{thika}/roster",
        world.token("manager", "thika"),
        json={
            "name": "Rescue boat team",
            "items": [{"resource": "swift-water-rescue-team", "quantity": 2}],
            "readiness_hours": 1,
            "self_sufficiency_days": 2,
        },
    )
    with signed_in(browser, site, "/roster", world.token("observer", "thika")) as roster:
        card = roster.locator("#package-list li.package").filter(has_text="Rescue boat team")
        expect(card.locator("td.remaining")).to_have_text("2")
        expect(roster.locator("#add-package")).to_be_hidden()
        expect(card.locator("form.package-edit")).to_have_count(0)


def test_the_requesting_manager_sees_who_could_help(browser: Any, site: Site) -> None:
    world = site.world
    machakos = world.city_ids["machakos"]
    site.api(
        "POST",
        f"/cities/{machakos}/roster",
        world.token("manager", "machakos"),
        json={
            "name": "Machakos generator pool",
            "items": [{"resource": "generator-100kw", "quantity": 4}],
            "readiness_hours": 6,
            "self_sufficiency_days": 5,
        },
    )
    incident, request = site.power_cut("Kibera blackout", generators=3)
    with signed_in(browser, site, "/manage", world.token("manager", "nairobi")) as manage:
        manage.locator(f'#incident-list li[data-incident-id="{incident["id"]}"] button').click()
        helpers = manage.locator(f'.who-could-help[data-request-id="{request["id"]}"]')
        expect(helpers).to_contain_text("Who could help")
        expect(helpers.locator(f'li[data-city-id="{machakos}"]')).to_contain_text(
            "Machakos generator pool"
        )
        expect(helpers.locator(f'li[data-city-id="{machakos}"]')).to_contain_text("not reached yet")
