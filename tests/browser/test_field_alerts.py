"""Alerts that reach a person, in real Chromium with notification permission granted: the
Notification calls are captured by wrapping `window.Notification` before the page's own
scripts. Notifications are asked for by a click, never on load; a new critical request
reaches the responder (and screen readers), a claim waiting for acceptance and its lapse
warning reach the manager, the responder hears of a declined claim, the manager of an
escalation; the tab title counts what is new; each person's choices survive a reload."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

from playbooks import stock_dir
from tests.browser.conftest import Site
from tests.browser.test_pages import LIVE_WITHIN_MS, signed_in

CAPTURE = """
(() => {
  const Real = window.Notification;
  window.__notifications = [];
  window.__permissionAsks = 0;
  function Recorded(title, options = {}) {
    window.__notifications.push({ title, body: options.body || "" });
  }
  Object.defineProperty(Recorded, "permission", { get: () => Real.permission });
  Recorded.requestPermission = (...args) => {
    window.__permissionAsks += 1;
    return Real.requestPermission(...args);
  };
  window.Notification = Recorded;
  window.__beeps = 0;
  const start = OscillatorNode.prototype.start;
  OscillatorNode.prototype.start = function (...args) {
    window.__beeps += 1;
    return start.apply(this, args);
  };
})();
"""
# Escalate after 3 s (the sweeper runs each second), and lapse unaccepted claims after 4
# minutes: inside the 5-minute warning from the start.
FAST = {
    "ring_intervals: [30m, 2h]": "ring_intervals: [3s, 2h]",
    "claim_acceptance_timeout: 20m": "claim_acceptance_timeout: 4m",
}
# Allowing a few seconds for the scheduler's escalation besides the live delivery.
ESCALATED_WITHIN_MS = 15_000


def _titles(page: Page) -> list[str]:
    got: list[str] = page.evaluate("window.__notifications.map((n) => n.title)")
    return got


def _notified(page: Page, title: str) -> dict[str, str]:
    page.wait_for_function(
        "(title) => window.__notifications.some((n) => n.title === title)",
        arg=title,
        timeout=ESCALATED_WITHIN_MS,
    )
    found: dict[str, str] = page.evaluate(
        "(title) => window.__notifications.find((n) => n.title === title)", title
    )
    return found


def test_alerts_reach_the_responder_and_the_manager_as_each_chose(browser: Any, site: Site) -> None:
    world = site.world
    manager, responder = world.token("manager", "nairobi"), world.token("responder", "thika")
    plan = (stock_dir() / "flood.yaml").read_text()
    for old, new in FAST.items():
        assert old in plan
        plan = plan.replace(old, new)
    site.api(
        "PUT",
        f"/cities/{world.city_ids['nairobi']}/playbooks/flood",
        world.token("admin"),
        json={"source": plan},
    )
    with (
        signed_in(browser, site, "/respond", responder, init_script=CAPTURE) as respond,
        signed_in(browser, site, "/manage", manager, init_script=CAPTURE) as manage,
    ):
        # Never asked on load: the person turns notifications on with a click.
        panel = respond.locator("#alerts-panel")
        panel.locator("summary").click()
        expect(respond.locator("#alerts-status")).to_have_text(
            "Browser notifications are off until you turn them on."
        )
        assert respond.evaluate("window.__permissionAsks") == 0
        assert manage.evaluate("window.__permissionAsks") == 0
        respond.locator("#alerts-permission").click()
        respond.wait_for_function("window.__permissionAsks === 1")
        # The browser's answer: granted (headless Chromium has no prompt to click).
        for page in (respond, manage):
            page.context.grant_permissions(["notifications"], origin=site.base_url)
        expect(respond.locator("#alerts-status")).to_have_text("Browser notifications are on.")
        respond.get_by_label("Play a sound").check()
        assert respond.evaluate("window.__beeps") == 1  # a sample of the sound chosen

        incident = site.api(
            "POST",
            "/incidents",
            manager,
            json={"incident_type": "flood", "playbook": "flood", "title": "Athi River flood"},
        )
        rescue = next(r for r in incident["requests"] if r["resource"] == "swift-water-rescue-team")

        # The responder: a notification, a sound, the title's count, and screen readers.
        critical = _notified(respond, "Critical request: Swift-water rescue team")
        assert critical["body"] == "Nairobi asks for 2 teams of swift-water rescue team."
        expect(respond.locator("#alert-announcer")).to_contain_text("Critical request:")
        expect(respond).to_have_title(re.compile(r"^\(\d+\) "))
        assert respond.evaluate("window.__beeps") >= 2

        # The manager: a claim waiting, and at once its lapse warning (it lapses in 4 min).
        claim = site.api(
            "POST",
            f"/requests/{rescue['id']}/claims",
            responder,
            json={"quantity": 1},
            headers={"Idempotency-Key": "alert-1"},
        )
        waiting = _notified(manage, "Claim waiting for your acceptance")
        assert waiting["body"] == "Thika claims 1 team of swift-water rescue team."
        lapse = _notified(manage, "Claim about to lapse")
        assert lapse["body"].startswith(
            "Thika\u2019s claim of 1 team of swift-water rescue team lapses in 3:"
        )
        expect(manage).to_have_title(re.compile(r"^\(\d+\) "))
        # Escalation of the manager's requests (ring 0 passes after 3 s).
        escalated = _notified(manage, "Request escalated")
        assert "moved to ring 1" in escalated["body"]

        # Declined: the responder reads why.
        site.api(
            "POST",
            f"/claims/{claim['id']}/status",
            manager,
            json={"status": "declined", "reason": "Boats already on site"},
        )
        declined = _notified(respond, "Your claim was declined")
        assert declined["body"] == (
            f"1 team of swift-water rescue team (claim #{claim['id']}): Boats already on site."
        )
        assert manage.evaluate("window.__permissionAsks") == 0
        # Looking at the page clears the count.
        respond.locator("h1, h2").first.click()
        expect(respond).not_to_have_title(re.compile(r"^\(\d+\) "))

        # The responder turns declines off; the choice survives a reload.
        respond.get_by_label("A claim of my city declined or expired").uncheck()
        respond.reload()
        expect(respond.locator("#conn")).to_have_attribute("data-state", "live", timeout=10_000)
        respond.evaluate("window.__sameDocument = true")
        respond.locator("#alerts-panel summary").click()
        expect(respond.get_by_label("A claim of my city declined or expired")).not_to_be_checked()
        expect(respond.get_by_label("Play a sound")).to_be_checked()
        again = site.api(
            "POST",
            f"/requests/{rescue['id']}/claims",
            responder,
            json={"quantity": 1},
            headers={"Idempotency-Key": "alert-2"},
        )
        site.api(
            "POST",
            f"/claims/{again['id']}/status",
            manager,
            json={"status": "declined", "reason": "Not needed"},
        )
        expect(
            respond.locator(f'#done-claims li[data-claim-id="{again["id"]}"]')
        ).to_have_attribute("data-status", "declined", timeout=LIVE_WITHIN_MS)
        assert "Your claim was declined" not in _titles(respond)
