"""Notes threads in real Chromium: the manager writes on a request from /manage, the
responder answers from /respond, and the board shows the thread and the feed live; a
note is text, never markup."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Site
from tests.browser.test_pages import LIVE_WITHIN_MS, signed_in

HOSTILE = 'Gate <b>B</b> <img src=x onerror="window.__injected=1"> & the ramp'


def _cots_wanted(site: Site, title: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Nairobi's flood `title`, and its request for 50 cots."""
    incident = site.flood(title)
    cots = site.api(
        "POST",
        f"/incidents/{incident['id']}/requests",
        site.world.token("manager", "nairobi"),
        json={"resource": "cots", "quantity": 50},
    )
    return incident, cots


def test_a_request_thread_is_written_on_manage_and_respond_and_followed_live_on_the_board(
    browser: Any, site: Site
) -> None:
    world = site.world
    manager, responder = world.token("manager", "nairobi"), world.token("responder", "thika")
    incident, cots = _cots_wanted(site, "Mathare")
    earlier = site.api(
        "POST", f"/requests/{cots['id']}/notes", responder, json={"body": "Ours are folding cots"}
    )
    at = f"#incident={incident['id']}"
    row = f'li[data-request-id="{cots["id"]}"]'
    with (
        signed_in(browser, site, f"/board{at}", world.token("observer", "nairobi")) as board,
        signed_in(browser, site, f"/manage{at}", manager) as manage,
        signed_in(browser, site, "/respond", responder) as respond,
    ):
        # The manager opens the thread (read from the API) and writes.
        thread = manage.locator(f"#incident-detail {row} details.notes")
        thread.locator("summary").click()
        expect(thread.locator(".note-body")).to_have_text(["Ours are folding cots"])
        expect(thread.locator("summary")).to_have_text("Notes (1)")
        thread.get_by_label("New note").fill(HOSTILE)
        thread.get_by_role("button", name="Add note").click()
        expect(thread.locator(".note-body")).to_have_text(["Ours are folding cots", HOSTILE])
        expect(thread.get_by_label("New note")).to_have_value("")

        # The board: the feed at once, and the thread (its count exact: the board folds the
        # whole event history in), which opens whole.
        expect(board.locator("#feed")).to_contain_text(
            f"Nairobi on request #{cots['id']}: “{HOSTILE}”", timeout=LIVE_WITHIN_MS
        )
        board_thread = board.locator(f"#request-list {row} details.notes")
        expect(board_thread.locator("summary")).to_have_text("Notes (2)")
        board_thread.locator("summary").click()
        expect(board_thread.locator(".note-body")).to_have_text(["Ours are folding cots", HOSTILE])
        assert board_thread.locator("form").count() == 0  # the board reads only

        # The responder answers from the inbox; the manager's open thread follows live.
        card_thread = respond.locator(f"#inbox {row} details.notes")
        card_thread.locator("summary").click()
        expect(card_thread.locator(".note-body")).to_have_count(2)
        card_thread.get_by_label("New note").fill("Arriving with 50 at 14:00")
        card_thread.get_by_role("button", name="Add note").click()
        expect(thread.locator(".note-body")).to_have_text(
            ["Ours are folding cots", HOSTILE, "Arriving with 50 at 14:00"],
            timeout=LIVE_WITHIN_MS,
        )
        expect(thread.locator(".note-meta").nth(2)).to_contain_text("Thika · responder")
        expect(board_thread.locator(".note-body")).to_have_count(3, timeout=LIVE_WITHIN_MS)
        # The manager's thread stayed open through every live redraw.
        expect(thread).to_have_attribute("open", "")

        for page in (board, manage, respond):
            assert page.locator(".note-body img, .note-body b, #feed img").count() == 0
            assert page.evaluate("window.__injected") is None
    assert earlier["city_id"] == world.city_ids["thika"]


def test_a_note_about_one_claim_is_written_from_respond_and_manage_on_that_claims_thread(
    browser: Any, site: Site
) -> None:
    world = site.world
    manager, responder = world.token("manager", "nairobi"), world.token("responder", "thika")
    incident, cots = _cots_wanted(site, "Kibera")
    claim = site.api(
        "POST",
        f"/requests/{cots['id']}/claims",
        responder,
        json={"quantity": 20},
        headers={"Idempotency-Key": "thika-cots-1"},
    )
    released = site.api(
        "POST",
        f"/requests/{cots['id']}/claims",
        responder,
        json={"quantity": 5},
        headers={"Idempotency-Key": "thika-cots-2"},
    )
    site.api("POST", f"/claims/{released['id']}/status", responder, json={"status": "withdrawn"})
    at = f"#incident={incident['id']}"
    row = f'li[data-request-id="{cots["id"]}"]'
    with (
        signed_in(browser, site, f"/manage{at}", manager) as manage,
        signed_in(browser, site, "/respond", responder) as respond,
    ):
        # The responder may write about its city's claims that still hold, or the request.
        card_thread = respond.locator(f"#inbox {row} details.notes")
        card_thread.locator("summary").click()
        about = card_thread.get_by_label("About")
        expect(about.locator("option")).to_have_text(
            [f"Request #{cots['id']}", f"Claim #{claim['id']} · Thika · 20 units"]
        )
        about.select_option(str(claim["id"]))
        card_thread.get_by_label("New note").fill("Truck 2 carries these")
        card_thread.get_by_role("button", name="Add note").click()
        expect(card_thread.locator(".note-meta")).to_contain_text(
            [f"on claim #{claim['id']}"], timeout=LIVE_WITHIN_MS
        )

        # The manager sees it on the request's thread, and may write on any of its claims,
        # the withdrawn one too (a word on why, for the record).
        thread = manage.locator(f"#incident-detail {row} details.notes")
        thread.locator("summary").click()
        expect(thread.locator(".note-body")).to_have_text(["Truck 2 carries these"])
        manage_about = thread.get_by_label("About")
        expect(manage_about.locator("option")).to_have_count(3)
        manage_about.select_option(str(released["id"]))
        thread.get_by_label("New note").fill("Withdrawn: the second truck broke down")
        thread.get_by_role("button", name="Add note").click()
        expect(thread.locator(".note-body")).to_have_text(
            ["Truck 2 carries these", "Withdrawn: the second truck broke down"],
            timeout=LIVE_WITHIN_MS,
        )
        # The responder's open thread follows live, the note marked with its claim.
        expect(card_thread.locator(".note-meta").nth(1)).to_contain_text(
            f"on claim #{released['id']}", timeout=LIVE_WITHIN_MS
        )

    held = site.api("GET", f"/claims/{claim['id']}/notes", responder)
    assert [n["body"] for n in held["data"]] == ["Truck 2 carries these"]
    assert held["data"][0]["city_id"] == world.city_ids["thika"]
    gone = site.api("GET", f"/claims/{released['id']}/notes", manager)
    assert [n["body"] for n in gone["data"]] == ["Withdrawn: the second truck broke down"]
    assert gone["data"][0]["city_id"] == world.city_ids["nairobi"]
