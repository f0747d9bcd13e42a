"""Passing on /respond in real Chromium: Thika, the only city of ring 0, passes on a
request with a reason; the card says so, the request moves to ring 1 at once, and the
board's feed says why, live."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Site
from tests.browser.test_pages import signed_in

LIVE_WITHIN_MS = 2_000


def test_a_responder_passes_and_the_request_moves_on_at_once(browser: Any, site: Site) -> None:
    world = site.world
    incident, request = site.power_cut("Eastlands transformer fire", generators=2)
    observer = world.token("observer", "nairobi")
    with (
        signed_in(browser, site, "/board", observer) as board,
        signed_in(browser, site, "/respond", world.token("responder", "thika")) as respond,
    ):
        board.click(f'#incident-list li[data-incident-id="{incident["id"]}"] button')
        card = respond.locator(f'#inbox li[data-request-id="{request["id"]}"]')
        card.locator(f"#pass-reason-{request['id']}").fill("Our generators power the hospital")
        card.locator(f"#pass-{request['id']}").click()
        expect(card).to_contain_text("Your city passed on this request.")
        expect(card.locator("form.claim-form")).to_have_count(0)
        expect(board.locator("#feed")).to_contain_text(
            "Thika passed on Generator 100 kW", timeout=LIVE_WITHIN_MS
        )
        expect(board.locator("#feed")).to_contain_text(
            "moved to ring 1 (every city of its ring passed)", timeout=LIVE_WITHIN_MS
        )
    moved = site.api("GET", f"/requests/{request['id']}", observer)
    assert moved["ring"] == 1
    passes = site.api("GET", f"/requests/{request['id']}/passes", observer)["data"]
    assert [p["reason"] for p in passes] == ["Our generators power the hospital"]
