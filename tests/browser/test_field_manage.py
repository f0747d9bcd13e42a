"""/manage keeps the city's history: its recently closed incidents are listed (older ones
a page at a time) and each opens, read only, from the list or from its address."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Site
from tests.browser.test_pages import LIVE_WITHIN_MS, signed_in


def _closed(site: Site, title: str, manager: str) -> dict[str, Any]:
    incident: dict[str, Any] = site.api(
        "POST", "/incidents", manager, json={"incident_type": "flood", "title": title}
    )
    site.api(
        "POST",
        f"/incidents/{incident['id']}/requests",
        manager,
        json={"resource": "cots", "quantity": 40},
    )
    site.api("POST", f"/incidents/{incident['id']}/close", manager)
    return incident


def test_closed_incidents_are_listed_on_manage_and_open_from_the_list_and_by_link(
    browser: Any, site: Site
) -> None:
    world = site.world
    manager = world.token("manager", "nairobi")
    closed = [_closed(site, f"Flood {n}", manager) for n in range(12)]
    site.api("POST", "/incidents", manager, json={"incident_type": "flood", "title": "Still on"})
    # Another city's closed incident is not Nairobi's history.
    _closed(site, "Thika flood", world.token("manager", "thika"))

    with signed_in(browser, site, "/manage", manager) as manage:
        items = manage.locator("#incident-list li")
        # The active one first, then the ten closed last.
        expect(items).to_have_count(11)
        expect(items.first).to_contain_text("Still on")
        expect(items.nth(1)).to_contain_text("Flood 11")
        expect(items.nth(1)).to_contain_text("Closed")
        manage.locator("#closed-more").click()
        expect(items).to_have_count(13)
        expect(manage.locator("#closed-more")).to_be_hidden()
        assert "Thika flood" not in manage.locator("#incident-list").inner_text()

        items.nth(12).get_by_role("button").click()
        detail = manage.locator("#incident-detail")
        expect(detail).to_contain_text("Flood 0")
        expect(detail.locator("li.request")).to_have_count(1)
        expect(detail.locator("li.request")).to_contain_text("Cots")
        # Read only: no request to cancel, nothing to raise.
        assert detail.get_by_role("button", name="Cancel request").count() == 0

    target = closed[3]
    with signed_in(browser, site, f"/manage#incident={target['id']}", manager) as manage:
        detail = manage.locator("#incident-detail")
        expect(detail.locator("#incident-title, h2").first).to_contain_text("Flood 3")
        expect(detail.locator("li.request")).to_have_count(1)


def test_a_playbooks_requests_are_trimmed_and_adjusted_before_declaring(
    browser: Any, site: Site
) -> None:
    world = site.world
    manager = world.token("manager", "nairobi")
    flood = site.api("GET", "/playbooks/flood", manager)["playbook"]["requests"]
    with signed_in(browser, site, "/manage", manager) as manage:
        declare = manage.locator("#declare")
        if not declare.get_attribute("open"):
            declare.locator("summary").click()
        manage.locator("#declare-playbook").select_option("flood")
        choices = manage.locator("#playbook-requests li.choice")
        expect(choices).to_have_count(len(flood))
        choices.nth(1).locator(".choice-raise").uncheck()
        choices.nth(0).locator(".choice-quantity").fill("1")
        choices.nth(2).locator(".choice-priority").select_option("critical")
        manage.locator("#declare-title").fill("Trimmed flood")
        manage.get_by_role("button", name="Preview").click()
        expect(manage.locator("#dry-run")).to_contain_text("Thika")
        manage.get_by_role("button", name="Declare incident").click()
        expect(manage.locator("#incident-detail #incident-title")).to_have_text("Trimmed flood")
        expect(manage.locator("#incident-detail li.request")).to_have_count(len(flood) - 1)

    incidents = site.api("GET", "/incidents?status=active", manager)["data"]
    trimmed = next(i for i in incidents if i["title"] == "Trimmed flood")
    raised = site.api("GET", f"/incidents/{trimmed['id']}", manager)["requests"]
    by_resource = {r["resource"]: r for r in raised}
    assert flood[1]["resource"] not in by_resource
    assert by_resource[flood[0]["resource"]]["quantity"] == 1
    assert by_resource[flood[2]["resource"]]["priority"] == "critical"
    assert by_resource[flood[3]["resource"]]["quantity"] == flood[3]["quantity"]


def test_the_playbooks_checklists_are_ticked_off_on_manage_and_the_board_follows_live(
    browser: Any, site: Site
) -> None:
    world = site.world
    manager = world.token("manager", "nairobi")
    incident = site.api(
        "POST",
        "/incidents",
        manager,
        json={
            "incident_type": "flood",
            "title": "Checklist flood",
            "playbook": "flood",
            "playbook_requests": [],
        },
    )
    first = incident["checklists"][0]
    total = sum(len(c["items"]) for c in incident["checklists"])
    at = f"#incident={incident['id']}"
    with (
        signed_in(browser, site, f"/board{at}", world.token("observer", "thika")) as board,
        signed_in(browser, site, f"/manage{at}", manager) as manage,
    ):
        checks = manage.locator("#incident-detail #checklists")
        expect(checks.locator("summary")).to_have_text(f"Checklists (0 of {total} done)")
        checks.get_by_label(first["items"][1]["text"]).check()
        expect(checks.locator("summary")).to_have_text(f"Checklists (1 of {total} done)")
        board_checks = board.locator("#incident-head #checklists")
        expect(board_checks.locator("summary")).to_have_text(
            f"Checklists (1 of {total} done)", timeout=LIVE_WITHIN_MS
        )
        done = board_checks.locator('section[data-checklist="0"] li[data-item="1"]')
        expect(done).to_have_attribute("data-done", "true")
        expect(done).to_contain_text("(Nairobi)")
        assert board_checks.locator("input").count() == 0  # the board reads only
        expect(board.locator("#feed")).to_contain_text(
            f"Nairobi ticked off “{first['items'][1]['text']}” ({first['title']})"
        )
        # Unticked, it is undone everywhere.
        checks.get_by_label(first["items"][1]["text"]).uncheck()
        expect(done).to_have_attribute("data-done", "false", timeout=LIVE_WITHIN_MS)
    state = site.api("GET", f"/incidents/{incident['id']}", manager)["checklists"]
    assert not any(item["done"] for c in state for item in c["items"])
