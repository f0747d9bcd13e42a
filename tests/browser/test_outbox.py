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


def events_after(site: Site, incident_id: int, after: int) -> list[dict[str, Any]]:
    manager = site.world.token("manager", "nairobi")
    page = site.api("GET", f"/incidents/{incident_id}/events?after={after}&limit=1000", manager)
    events: list[dict[str, Any]] = page["data"]
    return events


def claim(site: Site, request_id: int, quantity: int, key: str) -> dict[str, Any]:
    made: dict[str, Any] = site.api(
        "POST",
        f"/requests/{request_id}/claims",
        site.world.token("responder", "thika"),
        json={"quantity": quantity},
        headers={"Idempotency-Key": key},
    )
    return made


def test_manager_moves_and_edits_while_the_service_is_down_are_sent_once_in_order(
    browser: Any, site: Site
) -> None:
    incident, (cots, water) = stage(
        site, "Kariobangi bridge washed out", ("cots", 40), ("water-tender", 4)
    )
    first = claim(site, cots, 5, "kariobangi-cots")
    second = claim(site, water, 1, "kariobangi-water")
    manager = site.world.token("manager", "nairobi")
    at = f"/manage#incident={incident['id']}"
    with signed_in(browser, site, at, manager, init_script=NOTICES) as manage:
        queue = "#to-accept li[data-claim-id='{}']"
        expect(manage.locator(queue.format(second["id"]))).to_be_visible()
        before = site.api("GET", f"/incidents/{incident['id']}", manager)["last_seq"]
        site.server.stop()
        expect(manage.locator("#conn")).to_have_attribute("data-state", "reconnecting")

        manage.locator(queue.format(first["id"])).get_by_role("button", name="Accept").click()
        manage.locator(queue.format(second["id"])).get_by_role("button", name="Accept").click()
        edit = manage.locator(f"#incident-detail li[data-request-id='{cots}'] details.request-edit")
        edit.locator("summary").click()
        edit.locator(".edit-quantity").fill("30")
        edit.locator(".edit-save").click()
        expect(edit.locator(".edit-queued")).to_contain_text("Waiting to be sent")
        expect(manage.locator("#outbox")).to_contain_text("3 actions waiting to be sent")
        # A claim whose move waits offers no second one: one intended action each.
        for made in (first, second):
            row = manage.locator(queue.format(made["id"]))
            expect(row.get_by_role("button")).to_have_count(0)
            expect(row).to_contain_text("Waiting to be sent: accept claim")
        manage.wait_for_timeout(2_000)
        never_failed(manage)

        site.server.start()
        expect(manage.locator("#outbox")).to_be_hidden(timeout=15_000)
        expect(manage.locator("#conn")).to_have_attribute("data-state", "live", timeout=15_000)
        expect(edit.locator(".edit-queued")).to_have_text("")
        manage.wait_for_timeout(1_500)  # anything else in flight has landed by now
        never_failed(manage)
        made = [
            (e["type"], (e["data"].get("claim") or e["data"].get("request"))["id"])
            for e in events_after(site, incident["id"], before)
        ]
        print(f"manager's queued actions, as recorded: {made}; notices {notices(manage)}")
        assert made == [
            ("claim.changed", first["id"]),
            ("claim.changed", second["id"]),
            ("request.updated", cots),
        ]
        detail = site.api("GET", f"/incidents/{incident['id']}", manager)
        assert {c["id"]: c["status"] for c in detail["claims"]} == {
            first["id"]: "accepted",
            second["id"]: "accepted",
        }
        assert {r["id"]: r["quantity"] for r in detail["requests"]}[cots] == 30


def test_responder_moves_while_the_service_is_down_are_sent_once_in_order(
    browser: Any, site: Site
) -> None:
    incident, (cots, water) = stage(site, "Ruai pipeline burst", ("cots", 40), ("water-tender", 4))
    manager = site.world.token("manager", "nairobi")
    made = [claim(site, cots, 3, "ruai-cots"), claim(site, water, 1, "ruai-water")]
    for one in made:
        site.api("POST", f"/claims/{one['id']}/status", manager, json={"status": "accepted"})
    thika = site.world.token("responder", "thika")
    with signed_in(browser, site, "/respond", thika, init_script=NOTICES) as respond:
        row = "#my-claims li[data-claim-id='{}']"
        for one in made:
            expect(respond.locator(row.format(one["id"]))).to_have_attribute(
                "data-status", "accepted"
            )
        before = site.api("GET", f"/incidents/{incident['id']}", manager)["last_seq"]
        site.server.stop()
        expect(respond.locator("#conn")).to_have_attribute("data-state", "reconnecting")
        # Withdraw the first (it asks why), then set off with the second (it asks when).
        respond.locator(row.format(made[0]["id"])).get_by_role("button", name="Withdraw").click()
        respond.fill("dialog textarea", "Truck broke down")
        respond.locator("dialog").get_by_role("button", name="Withdraw").click()
        respond.locator(row.format(made[1]["id"])).get_by_role("button", name="En route").click()
        respond.locator("dialog input[type=datetime-local]").fill(
            respond.evaluate(
                """() => {
                    const d = new Date(Date.now() + 3_600_000);
                    const p = (n) => String(n).padStart(2, "0");
                    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T`
                      + `${p(d.getHours())}:${p(d.getMinutes())}`;
                }"""
            )
        )
        respond.locator("dialog").get_by_role("button", name="Set off").click()
        expect(respond.locator("#outbox")).to_contain_text("2 actions waiting to be sent")
        for one in made:
            card_ = respond.locator(row.format(one["id"]))
            expect(card_.locator(".queued")).to_contain_text("Waiting to be sent")
            expect(card_.get_by_role("button")).to_have_count(0)
        respond.wait_for_timeout(2_000)
        never_failed(respond)

        site.server.start()
        expect(respond.locator("#outbox")).to_be_hidden(timeout=15_000)
        expect(respond.locator(row.format(made[1]["id"]))).to_have_attribute(
            "data-status", "en_route"
        )
        respond.wait_for_timeout(1_500)
        never_failed(respond)
        recorded = [
            (e["type"], e["data"]["claim"]["id"], e["data"]["claim"]["status"])
            for e in events_after(site, incident["id"], before)
        ]
        print(f"responder's queued moves, as recorded: {recorded}")
        assert recorded == [
            ("claim.changed", made[0]["id"], "withdrawn"),
            ("claim.changed", made[1]["id"], "en_route"),
        ]


# A move whose first attempt lands but whose answer is lost, sent again by the outbox.
LOST_ANSWER = """
async ({ token, claimId, status }) => {
  const { makeApi, ApiError } = await import("/static/api.js");
  const { sendMove } = await import("/static/outbox.js");
  const api = makeApi(() => token);
  const live = {
    async command(op, body) {
      const sent = { method: "POST", body: { status: body.status } };
      await api(`/claims/${body.claim_id}/status`, sent);
      throw new ApiError(0, "no answer in time", { transport: true });
    },
  };
  try {
    const action = { key: "move-lost", body: { claim_id: claimId, status, extra: {} } };
    const claim = await sendMove({ live, api }, action);
    return `answered ${claim.status}`;
  } catch (error) {
    return `refused ${error.status}: ${error.message}`;
  }
}
"""


def test_a_move_sent_again_after_its_answer_was_lost_is_reconciled_not_failed(
    browser: Any, site: Site
) -> None:
    incident, (cots,) = stage(site, "Githurai market fire", ("cots", 20))
    made = claim(site, cots, 2, "githurai-cots")
    manager = site.world.token("manager", "nairobi")
    at = f"/manage#incident={incident['id']}"
    with signed_in(browser, site, at, manager) as manage:
        before = site.api("GET", f"/incidents/{incident['id']}", manager)["last_seq"]
        args = {"token": manager, "claimId": made["id"], "status": "accepted"}
        # The second attempt is refused (already accepted): the first landed, so it is done.
        assert manage.evaluate(LOST_ANSWER, args) == "answered accepted"
        # A refusal for another reason stays a refusal: declined, then asked to accept.
        site.api("POST", f"/claims/{made['id']}/status", manager, json={"status": "declined"})
        said = manage.evaluate(LOST_ANSWER, args)
        print(f"a lost answer reconciled; a real refusal said: {said}")
        assert said.startswith("refused 409")
        changes = [
            e["data"]["claim"]["status"]
            for e in events_after(site, incident["id"], before)
            if e["type"] == "claim.changed"
        ]
        assert changes == ["accepted", "declined"]
