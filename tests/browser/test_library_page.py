"""The library page in real Chromium against a real aidmesh process: a manager adopts a
peer city's playbook, hears of its newer version, sees the diff and pulls it in; a dry
run from the library and a preview beside the declare form on /manage."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Site
from tests.browser.test_pages import signed_in
from tests.library.support import SMALL_FLOOD


def _publish(site: Site, source: str, note: str) -> dict[str, Any]:
    thika = site.world.city_ids["thika"]
    site.api(
        "PUT",
        f"/cities/{thika}/playbooks/flood",
        site.world.token("admin"),
        json={"source": source},
    )
    version: dict[str, Any] = site.api(
        "POST",
        f"/cities/{thika}/library/flood",
        site.world.token("manager", "thika"),
        json={"change_note": note},
    )
    return version


def test_a_manager_adopts_a_peers_playbook_and_pulls_in_its_newer_version(
    browser: Any, site: Site
) -> None:
    first = _publish(site, SMALL_FLOOD, "Three requests to start with")
    manager = site.world.token("manager", "nairobi")
    with signed_in(browser, site, "/library", manager) as page:
        expect(page.locator("nav a[aria-current=page]")).to_have_text("Library")
        item = page.locator(f"#library-versions li[data-version-id='{first['id']}']")
        expect(item.locator("h3")).to_have_text("Thika, flood v1")
        expect(item.locator(".track-record")).to_have_text("Not declared yet (exercises apart).")

        item.get_by_role("button", name="Dry run").click()
        expect(page.locator("#detail-title")).to_have_text(
            "Dry run of Thika, flood v1 in Nairobi, now"
        )
        expect(page.locator("#library-detail .ring[data-ring='0'] li")).to_have_text(
            ["Thika · 39.7 km"]
        )
        item.get_by_role("button", name="vs stock").click()
        expect(page.locator("#detail-diff")).to_contain_text("+title: Small flood")

        item.get_by_role("button", name="Adopt").click()
        lineage = page.locator("#library-lineage li[data-incident-type='flood'] .lineage")
        expect(lineage).to_have_text("adopted from Thika, flood v1")
        expect(page.locator("#library-notices li.empty")).to_have_text("Nothing new.")

        second = _publish(site, SMALL_FLOOD.replace("Small flood", "Smaller flood"), "Renamed")
        page.locator("#library-refresh").click()
        notice = page.locator(f"#library-notices li[data-version-id='{second['id']}']")
        expect(notice.locator("p")).to_have_text(
            "Thika, flood v2 is out; you adopted Thika, flood v1."
        )
        expect(notice.locator("pre.diff")).to_contain_text("+title: Smaller flood")
        notice.get_by_role("button", name="Pull in").click()
        expect(lineage).to_have_text("adopted from Thika, flood v2")
        expect(page.locator("#library-notices li.empty")).to_have_text("Nothing new.")

    declared = site.api("GET", "/playbooks/flood", manager)
    assert declared["origin"] == "city" and declared["playbook"]["title"] == "Smaller flood"


def test_the_declare_form_previews_a_dry_run(browser: Any, site: Site) -> None:
    manager = site.world.token("manager", "nairobi")
    thika = site.world.city_ids["thika"]
    package = {
        "name": "Thika excavators",
        "items": [{"resource": "excavator", "quantity": 3}],
        "readiness_hours": 6,
        "self_sufficiency_days": 2,
    }
    site.api("POST", f"/cities/{thika}/roster", site.world.token("manager", "thika"), json=package)
    before = site.api("GET", "/incidents", manager)["count"]
    with signed_in(browser, site, "/manage", manager) as page:
        page.locator("#declare-playbook").select_option("earthquake")
        page.locator("#declare-preview").click()
        dry_run = page.locator("#dry-run")
        expect(dry_run.locator("h3").first).to_have_text("10 requests")
        expect(dry_run.locator(".ring[data-ring='0'] li")).to_have_text(
            ["Thika · 39.7 km", "Machakos · 55.9 km"]  # the earthquake's ring 0 is wider
        )
        expect(dry_run.locator("li[data-resource='excavator'] .lenders")).to_have_text(
            "Rosters: Thika (ring 0, Thika excavators: 3 units, ready in 6 h) · 3 units in ring 0"
        )
        expect(dry_run.locator("li[data-resource='field-hospital'] .lenders")).to_have_text(
            "No roster in reach holds it now."
        )
    assert site.api("GET", "/incidents", manager)["count"] == before
