"""The responder console's outbox, in real Chromium against a real aidmesh process.

A claim clicked on a flaky link is one intended action with one idempotency key, kept
in the browser until the service has answered: the browser going offline with the
websocket still open, the service stopped, a reload while a claim waits; each time the
claim is made exactly once (counted in the API and in the events table), in the order
clicked, and the page never says a claim failed while its fate is unknown.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect

from tests.browser.conftest import Site
from tests.browser.test_pages import signed_in

# Records, before the page's own scripts run, every notice the page shows.
NOTICES = """
window.__notices = [];
new MutationObserver((changes) => {
  for (const change of changes) {
    for (const node of change.addedNodes) {
      if (node.nodeType === 1 && node.classList.contains("notice")) {
        window.__notices.push(node.textContent);
      }
    }
  }
}).observe(document, { subtree: true, childList: true });
"""
# A link that dies quietly (a captive portal, a dead uplink behind the Wi-Fi): the browser
# still believes it is online, so the page keeps its websocket open while frames go nowhere.
QUIET_LINK = """
Object.defineProperty(Navigator.prototype, "onLine", { get: () => true });
window.addEventListener("offline", (event) => event.stopImmediatePropagation(), true);
"""
# Records the idempotency key of every claim the page sends over the websocket.
CLAIM_KEYS = """
window.__claimKeys = [];
const nativeSend = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  try {
    const message = JSON.parse(data);
    if (message.op === "claim") window.__claimKeys.push(message.idempotency_key);
  } catch {}
  return nativeSend.call(this, data);
};
"""
# What a page must never say about a claim whose fate is unknown.
FAILURE_WORDS = ("cannot be reached", "no answer in time", "connection dropped", "not connected")


def notices(page: Page) -> list[str]:
    seen: list[str] = page.evaluate("window.__notices")
    return seen


def stage(site: Site, title: str, *wanted: tuple[str, int]) -> tuple[dict[str, Any], list[int]]:
    """An incident of Nairobi with one request per (resource, quantity), reaching Thika."""
    manager = site.world.token("manager", "nairobi")
    incident = site.api(
        "POST", "/incidents", manager, json={"incident_type": "flood", "title": title}
    )
    ids = [
        site.api(
            "POST",
            f"/incidents/{incident['id']}/requests",
            manager,
            json={"resource": resource, "quantity": quantity, "priority": "high"},
        )["id"]
        for resource, quantity in wanted
    ]
    return incident, ids


def claims_made(site: Site, incident_id: int) -> tuple[list[dict[str, Any]], int]:
    """The incident's claims from the API, and its `claim.made` events in the events table."""
    manager = site.world.token("manager", "nairobi")
    claims: list[dict[str, Any]] = site.api("GET", f"/incidents/{incident_id}", manager)["claims"]
    page = site.api("GET", f"/incidents/{incident_id}/events?after=0&limit=1000", manager)
    return claims, sum(event["type"] == "claim.made" for event in page["data"])


def card(request_id: int) -> str:
    return f'#inbox li[data-request-id="{request_id}"]'


def never_failed(page: Page) -> None:
    said = notices(page)
    assert not [n for n in said if any(w in n for w in FAILURE_WORDS)], said


def test_units_box_starts_at_one_not_everything_left(browser: Any, site: Site) -> None:
    incident, (cots,) = stage(site, "Kibera shelter opening", ("cots", 250))
    with signed_in(browser, site, "/respond", site.world.token("responder", "thika")) as respond:
        expect(respond.locator(f"{card(cots)} input.qty")).to_have_value("1")
        respond.click(f"{card(cots)} form.claim-form button[type=submit]")
        expect(respond.locator(f"{card(cots)} .quantities")).to_contain_text("249 left")
    claims, events = claims_made(site, incident["id"])
    print(f"the main Claim button claimed {[c['quantity'] for c in claims]} of 250 cots")
    assert [c["quantity"] for c in claims] == [1] and events == 1


def test_claim_offline_with_the_socket_open_is_made_once(browser: Any, site: Site) -> None:
    incident, (cots,) = stage(site, "Mukuru fire shelter", ("cots", 250))
    token = site.world.token("responder", "thika")
    with signed_in(
        browser, site, "/respond", token, init_script=NOTICES + QUIET_LINK + CLAIM_KEYS
    ) as respond:
        form = card(cots)
        respond.fill(f"{form} input.qty", "2")
        respond.context.set_offline(True)
        respond.wait_for_timeout(500)
        # The socket is still open: the claim goes out on it and is held by the dead link.
        expect(respond.locator("#conn")).to_have_attribute("data-state", "live")
        respond.click(f"{form} form.claim-form button[type=submit]")
        # Past the websocket command's 10 s timeout: the fate is unknown, so it waits.
        respond.wait_for_timeout(11_000)
        expect(respond.locator("#outbox")).to_contain_text("1 action waiting to be sent")
        button = f"{form} form.claim-form button[type=submit]"
        expect(respond.locator(button)).to_be_disabled()
        # The waiting claim's button is one element while its claim goes from waiting to
        # sending and back (a retry each second or more): a click never lands on one gone.
        respond.eval_on_selector(button, "b => { b.dataset.marked = 'yes'; }")
        # Clicking again does not make a second action.
        for _ in range(3):
            respond.click(button, force=True)
        respond.wait_for_timeout(2_500)  # past the next retry: waiting, sending, waiting
        expect(respond.locator(f"{button}[data-marked=yes]")).to_have_count(1)
        expect(respond.locator("#outbox")).to_contain_text("1 action waiting to be sent")
        never_failed(respond)

        respond.context.set_offline(False)
        expect(respond.locator("#notices")).to_contain_text("Claimed 2 ", timeout=15_000)
        expect(respond.locator("#outbox")).to_be_hidden()
        expect(respond.locator(f"{form} .quantities")).to_contain_text("248 left")
        respond.wait_for_timeout(2_000)  # anything else in flight has landed by now
        never_failed(respond)
        keys: list[str] = respond.evaluate("window.__claimKeys")
        claims, events = claims_made(site, incident["id"])
        print(
            f"offline with the socket open: {len(keys)} claim frame(s) sent under "
            f"{len(set(keys))} key(s); {len(claims)} claim(s), {events} claim.made "
            f"event(s); notices {notices(respond)}"
        )
        assert len(set(keys)) == 1, keys
        assert [c["quantity"] for c in claims] == [2] and events == 1


def test_claims_made_while_the_service_is_down_are_sent_once_in_order(
    browser: Any, site: Site
) -> None:
    incident, (tarps, water) = stage(
        site, "Athi River bank burst", ("sandbags", 400), ("water-tender", 3)
    )
    token = site.world.token("responder", "thika")
    with signed_in(browser, site, "/respond", token, init_script=NOTICES) as respond:
        expect(respond.locator(card(water))).to_be_visible()
        site.server.stop()  # SIGTERM, and waits for the exit
        expect(respond.locator("#conn")).to_have_attribute("data-state", "reconnecting")
        respond.click(f"{card(tarps)} form.claim-form button[type=submit]")
        respond.click(f"{card(water)} form.claim-form button[type=submit]")
        expect(respond.locator("#outbox")).to_contain_text("2 actions waiting to be sent")
        for request_id in (tarps, water):
            expect(
                respond.locator(f"{card(request_id)} form.claim-form button[type=submit]")
            ).to_be_disabled()
        respond.wait_for_timeout(2_000)
        never_failed(respond)
        started = time.monotonic()
        site.server.start()
        expect(respond.locator("#outbox")).to_be_hidden(timeout=15_000)
        sent_s = time.monotonic() - started
        respond.wait_for_timeout(1_000)
        never_failed(respond)
        claims, events = claims_made(site, incident["id"])
        order = [c["request_id"] for c in sorted(claims, key=lambda c: c["id"])]
        print(
            f"service down: {len(claims)} claim(s), {events} claim.made event(s), "
            f"all sent {sent_s:.1f} s after the restart began; order {order}"
        )
        assert order == [tarps, water] and events == 2


def test_a_claim_waiting_across_a_reload_is_sent_once(browser: Any, site: Site) -> None:
    incident, (cots,) = stage(site, "Kawangware landslide", ("cots", 60))
    token = site.world.token("responder", "thika")
    with signed_in(browser, site, "/respond", token, init_script=NOTICES) as respond:
        respond.fill(f"{card(cots)} input.qty", "3")
        respond.context.set_offline(True)
        expect(respond.locator("#conn")).not_to_have_attribute("data-state", "live")
        respond.click(f"{card(cots)} form.claim-form button[type=submit]")
        expect(respond.locator("#outbox")).to_contain_text("1 action waiting to be sent")
        # Reloaded while offline (the browser's error page), then again once online.
        with contextlib.suppress(PlaywrightError):  # offline: the browser's error page
            respond.reload()
        respond.context.set_offline(False)
        respond.goto(site.base_url + "/respond")
        expect(respond.locator("#conn")).to_have_attribute("data-state", "live")
        respond.evaluate("window.__sameDocument = true")
        expect(respond.locator(f"{card(cots)} .quantities")).to_contain_text("57 left")
        expect(respond.locator("#outbox")).to_be_hidden()
        respond.wait_for_timeout(1_500)
        claims, events = claims_made(site, incident["id"])
        print(f"across a reload: {len(claims)} claim(s), {events} claim.made event(s)")
        assert [c["quantity"] for c in claims] == [3] and events == 1
