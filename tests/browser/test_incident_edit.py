"""Editing an incident on /manage in real Chromium: the board open in another context shows
the new severity, title and description within a second, without a reload; the form's
errors say what is wrong, whether the browser or the server finds it."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Site
from tests.browser.test_pages import LIVE_WITHIN_MS, feed_seqs, signed_in


def test_a_severity_edited_on_manage_changes_on_an_open_board_without_reload(
    browser: Any, site: Site
) -> None:
    world = site.world
    manager = world.token("manager", "nairobi")
    incident = site.api(
        "POST",
        "/incidents",
        manager,
        json={"incident_type": "flood", "title": "Mathare river rising", "severity": "moderate"},
    )
    at = f"#incident={incident['id']}"
    item = f'#incident-list li[data-incident-id="{incident["id"]}"]'
    with (
        signed_in(browser, site, f"/board{at}", world.token("observer", "thika")) as board,
        signed_in(browser, site, f"/manage{at}", manager) as manage,
    ):
        expect(board.locator("#incident-head .badge.severity-moderate")).to_be_visible()

        manage.click("#edit-incident summary")
        expect(manage.locator("#edit-severity")).to_have_value("moderate")
        expect(manage.locator("#edit-title")).to_have_value("Mathare river rising")
        manage.select_option("#edit-severity", "extreme")
        manage.fill("#edit-title", "Mathare valley flash flood")
        manage.fill("#edit-description", "Homes along the river evacuated")
        manage.click("#edit-save")

        # The board follows at once: badge, title, description, list item and feed.
        head = board.locator("#incident-head")
        expect(head.locator(".badge.severity-extreme")).to_be_visible(timeout=LIVE_WITHIN_MS)
        expect(head.locator(".badge.severity-moderate")).to_have_count(0)
        expect(board.locator("#incident-title")).to_have_text("Mathare valley flash flood")
        expect(head.locator(".description")).to_have_text("Homes along the river evacuated")
        expect(board.locator(item)).to_contain_text("Mathare valley flash flood")
        expect(board.locator(f"{item} .badge.severity-extreme")).to_be_visible()
        expect(board.locator("#feed")).to_contain_text(
            "Nairobi updated the incident: severity moderate → extreme, "
            "title “Mathare valley flash flood”, new description"
        )
        # So does the manager's own console, and the form closes on success.
        expect(manage.locator("#incident-title")).to_have_text("Mathare valley flash flood")
        expect(manage.locator("#incident-detail .badge.severity-extreme")).to_be_visible()
        expect(manage.locator("#edit-incident")).not_to_have_attribute("open", "")

        stored = site.api("GET", f"/incidents/{incident['id']}", manager)
        assert (stored["severity"], stored["title"]) == ("extreme", "Mathare valley flash flood")
        seqs = site.event_seqs(incident["id"], manager)
        assert seqs == [1, 2]
        expect(board.locator("#feed li")).to_have_count(2)
        assert feed_seqs(board) == seqs


def test_the_edit_form_says_what_is_wrong_and_saves_nothing(browser: Any, site: Site) -> None:
    world = site.world
    manager = world.token("manager", "nairobi")
    incident = site.api(
        "POST",
        "/incidents",
        manager,
        json={"incident_type": "heatwave", "title": "Heat in Eastlands", "severity": "severe"},
    )
    with signed_in(browser, site, f"/manage#incident={incident['id']}", manager) as manage:
        manage.click("#edit-incident summary")
        error = manage.locator("#edit-error")

        manage.click("#edit-save")
        expect(error).to_have_text(
            "Nothing to save: change the severity, title or description first."
        )

        manage.fill("#edit-title", "   ")
        manage.click("#edit-save")
        expect(error).to_have_text("Give the incident a title.")

        # What only the server knows: a severity outside its vocabulary (an option the
        # page would never offer, added here) comes back as the server's own words.
        manage.fill("#edit-title", "Heat in Eastlands")
        manage.eval_on_selector(
            "#edit-severity",
            "select => select.append(new Option('catastrophic', 'catastrophic', true, true))",
        )
        manage.click("#edit-save")
        expect(error).to_contain_text("Not saved: severity: Input should be 'minor'")
        expect(manage.locator("#edit-incident")).to_have_attribute("open", "")

    stored = site.api("GET", f"/incidents/{incident['id']}", manager)
    assert (stored["severity"], stored["title"], stored["last_seq"]) == (
        "severe",
        "Heat in Eastlands",
        1,
    )


def test_a_manager_moves_the_incident_and_the_board_follows_live(browser: Any, site: Site) -> None:
    world = site.world
    manager = world.token("manager", "nairobi")
    incident = site.flood("Kibera drains overflow", lat=-1.3133, lon=36.7876)
    at = f"#incident={incident['id']}"
    with (
        signed_in(browser, site, f"/board{at}", world.token("observer", "thika")) as board,
        signed_in(browser, site, f"/manage{at}", manager) as manage,
    ):
        manage.click("#edit-incident summary")
        # The place as it is, on a map to click or in fields to type.
        expect(manage.locator("#edit-lat")).to_have_value("-1.3133")
        expect(manage.locator("#edit-map svg.picker .chosen")).to_have_count(1)
        manage.fill("#edit-lat", "-1.35")
        manage.fill("#edit-lon", "36.9")
        manage.press("#edit-lon", "Tab")
        manage.click("#edit-save")

        expect(board.locator("#feed")).to_contain_text(
            "Nairobi updated the incident: location moved on the map", timeout=LIVE_WITHIN_MS
        )
        # The board's map marks the incident where it is now (Embakasi, apart from the city
        # centre), without a reload.
        expect(board.locator("#map .incident-mark title")).to_contain_text("1.3500° S, 36.9000° E")
        expect(manage.locator("#edit-incident")).not_to_have_attribute("open", "")
        stored = site.api("GET", f"/incidents/{incident['id']}", manager)
        assert (stored["lat"], stored["lon"]) == (-1.35, 36.9)
        # Opened again, the box shows where the incident is now.
        manage.click("#edit-incident summary")
        expect(manage.locator("#edit-lat")).to_have_value("-1.35")
        # Only one coordinate is refused by the form, and nothing is sent.
        manage.fill("#edit-lon", "")
        manage.click("#edit-save")
        expect(manage.locator("#edit-error")).not_to_be_empty()
        assert site.api("GET", f"/incidents/{incident['id']}", manager)["lon"] == 36.9
