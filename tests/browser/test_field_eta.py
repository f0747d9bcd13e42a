"""Who is coming, and when, in real Chromium: the responder sets off with an ETA and the
team's details from /respond; the board lists per request each responding city with its
units, status and ETA, live, and marks an arrival overdue once its ETA passes (the page's
own clock ticking, no reload); the manager stands a team down with a reason, which the
responder reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Site
from tests.browser.test_pages import LIVE_WITHIN_MS, signed_in

# Long enough for the page to load and show the ETA still ahead; short enough to pass soon.
SOON_S = 4
OVERDUE_WITHIN_MS = (SOON_S + 10) * 1000


def _claim(site: Site, request_id: int, quantity: int, key: str) -> dict[str, Any]:
    claim: dict[str, Any] = site.api(
        "POST",
        f"/requests/{request_id}/claims",
        site.world.token("responder", "thika"),
        json={"quantity": quantity},
        headers={"Idempotency-Key": key},
    )
    site.api(
        "POST",
        f"/claims/{claim['id']}/status",
        site.world.token("manager", "nairobi"),
        json={"status": "accepted"},
    )
    return claim


def test_the_responder_sets_off_with_an_eta_the_board_lists_who_is_coming_and_an_overdue_arrival(
    browser: Any, site: Site
) -> None:
    world = site.world
    manager, responder = world.token("manager", "nairobi"), world.token("responder", "thika")
    incident = site.api(
        "POST", "/incidents", manager, json={"incident_type": "flood", "title": "Athi River"}
    )
    pumps = site.api(
        "POST",
        f"/incidents/{incident['id']}/requests",
        manager,
        json={"resource": "high-capacity-pump", "quantity": 4, "report_to": "Gate B"},
    )
    first = _claim(site, pumps["id"], 2, "eta-first")
    second = _claim(site, pumps["id"], 1, "eta-second")
    at = f"#incident={incident['id']}"
    with (
        signed_in(browser, site, f"/board{at}", world.token("observer", "nairobi")) as board,
        signed_in(browser, site, f"/manage{at}", manager) as manage,
        signed_in(browser, site, "/respond", responder) as respond,
    ):
        card = respond.locator(f'#my-claims li[data-claim-id="{first["id"]}"]')
        card.locator('button[data-focus="en_route"]').click()
        dialog = respond.locator("dialog.ask")
        expect(dialog).to_contain_text("when do they arrive?")
        expect(dialog).to_contain_text("Report to: Gate B")
        # Setting off without an ETA is not possible: the form asks for it.
        dialog.get_by_role("button", name="Set off").click()
        expect(dialog).to_be_visible()
        eta = respond.evaluate(
            "() => { const d = new Date(Date.now() + 2 * 3600e3);"
            " return new Date(d - d.getTimezoneOffset() * 6e4).toISOString().slice(0, 16); }"
        )
        dialog.get_by_label("Expected arrival").fill(eta)
        dialog.get_by_label("Team lead").fill("Wanjiru Kamau")
        dialog.get_by_label("People travelling").fill("6")
        dialog.get_by_label("Vehicle").fill("Truck KBZ 123A")
        dialog.get_by_label("Contact on the way").fill("+254 700 000 111")
        dialog.get_by_role("button", name="Set off").click()
        expect(card.locator(".chip")).to_have_text("En route", timeout=LIVE_WITHIN_MS)
        expect(card.locator(".arrival .eta")).to_contain_text("arrives in")
        expect(card.locator(".arrival .journey")).to_have_text(
            "lead Wanjiru Kamau · 6 people · Truck KBZ 123A · +254 700 000 111"
        )

        row = board.locator(f'#request-list li[data-request-id="{pumps["id"]}"]')
        coming = row.locator(f'.responders li[data-claim-id="{first["id"]}"]')
        expect(coming).to_contain_text("Thika", timeout=LIVE_WITHIN_MS)
        expect(coming.locator(".responder-units")).to_have_text("2 units")
        expect(coming.locator(".chip")).to_have_text("En route")
        expect(coming.locator(".eta")).to_contain_text("arrives in 1 h 59 min")
        expect(coming.locator(".eta")).not_to_have_class("eta overdue")
        expect(coming.locator(".journey")).to_contain_text("lead Wanjiru Kamau · 6 people")
        stored = site.api("GET", f"/claims/{first['id']}", responder)
        assert stored["team_size"] == 6 and stored["eta_at"] is not None
        assert abs(
            datetime.fromisoformat(stored["eta_at"]) - (datetime.now(UTC) + timedelta(hours=2))
        ) < timedelta(minutes=2)

        # The second team is due in a few seconds: the board marks it overdue when that
        # passes, by itself.
        soon = (datetime.now(UTC) + timedelta(seconds=SOON_S)).isoformat()
        site.api(
            "POST",
            f"/claims/{second['id']}/status",
            responder,
            json={"status": "en_route", "eta": soon.replace("+00:00", "Z")},
        )
        late = row.locator(f'.responders li[data-claim-id="{second["id"]}"] .eta')
        expect(late).to_have_class("eta overdue", timeout=OVERDUE_WITHIN_MS)
        expect(late).to_contain_text("overdue")
        # Soonest arrival first.
        expect(row.locator(".responders li")).to_have_count(2)
        assert row.locator(".responders li").first.get_attribute("data-claim-id") == str(
            second["id"]
        )
        manage_row = manage.locator(f'#incident-detail tr[data-claim-id="{second["id"]}"]')
        expect(manage_row.locator(".eta")).to_have_class("eta overdue", timeout=LIVE_WITHIN_MS)

        # The manager stands the first team down, saying why.
        manage.locator(f'button[data-focus="decline-{first["id"]}"]').click()
        ask = manage.locator("dialog.ask")
        ask.get_by_role("button", name="Stand down").click()
        expect(ask).to_be_visible()  # the reason is asked for
        ask.get_by_label("Why").fill("Water receded at Gate B")
        ask.get_by_role("button", name="Stand down").click()
        expect(coming).to_have_count(0, timeout=LIVE_WITHIN_MS)
        done = respond.locator(f'#done-claims li[data-claim-id="{first["id"]}"]')
        expect(done.locator(".end-reason")).to_contain_text(
            "Water receded at Gate B", timeout=LIVE_WITHIN_MS
        )
        expect(board.locator("#feed")).to_contain_text("declined")
