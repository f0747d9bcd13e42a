"""The pages through a rolling restart and through the browser going offline, in real
Chromium against a real aidmesh process.

The service gets SIGTERM while claims flow and is started again on the same port: the
board and the responder console say they are reconnecting, are live again within a
second of the new process being ready (not after their backoff), resume from their
last seqs without losing or repeating an event, and a claim clicked right after the
restart is made once. When the browser goes offline the indicator stops saying "Live"
and comes back by itself, with what happened meanwhile, when the network returns.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from service.commands import claims as claim_commands
from service.domain.actors import Actor, Role
from service.models import ClaimCreate
from tests.browser.conftest import Site
from tests.browser.test_pages import feed_seqs, signed_in

# Back live within this long of the new process answering /readyz.
LIVE_AFTER_READY_MS = 1_000
LIVE_WITHIN_MS = 1_000

# Records, before the page's own scripts run, every websocket ticket the page asks for,
# every websocket it opens and how it closed, and every state the connection indicator
# shows, with wall-clock times.
RECORDER = """
window.__live = [];
const nativeFetch = window.fetch;
window.fetch = (resource, init) => {
  if (String(resource).endsWith("/ws-ticket")) {
    window.__live.push({ what: "ticket", at: Date.now() });
  }
  return nativeFetch(resource, init);
};
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    window.__live.push({ what: "open", at: Date.now() });
    this.addEventListener("close", (event) =>
      window.__live.push({ what: "close", code: event.code, at: Date.now() }));
  }
};
new MutationObserver((changes) => {
  for (const change of changes) {
    if (change.target.id === "conn") {
      window.__live.push({ what: "state", state: change.target.dataset.state, at: Date.now() });
    }
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-state"] });
"""


def recorded(page: Page) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = page.evaluate("window.__live")
    return log


class ClaimFlow(threading.Thread):
    """Thika claims one sandbag at a time, each claim under its own Idempotency-Key and
    retried with it until the service answers, so each is made exactly once."""

    def __init__(self, site: Site, token: str, request_id: int) -> None:
        super().__init__(daemon=True)
        self.site, self.token, self.request_id = site, token, request_id
        self.finish = threading.Event()
        self.made = 0
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.finish.is_set():
                key = f"flow-{self.made + 1}"
                while True:
                    try:
                        self.site.api(
                            "POST",
                            f"/requests/{self.request_id}/claims",
                            self.token,
                            json={"quantity": 1},
                            headers={"Idempotency-Key": key},
                        )
                        break
                    except httpx.TransportError:
                        pass  # down for the restart: the same key again
                    except httpx.HTTPStatusError as error:
                        if error.response.status_code != 503:
                            raise
                    time.sleep(0.05)
                self.made += 1
                time.sleep(0.1)
        except BaseException as error:  # reported by the test, not lost in the thread
            self.failure = error

    def stop(self) -> int:
        self.finish.set()
        self.join(timeout=20)
        assert not self.is_alive(), "the claim flow did not finish"
        if self.failure is not None:
            raise self.failure
        return self.made


def tickets_since(page: Page, since_ms: float) -> int:
    return sum(e["what"] == "ticket" and e["at"] > since_ms for e in recorded(page))


def back_live(log: list[dict[str, Any]], after_ms: float) -> tuple[dict[str, Any], list[str]]:
    """The 1012 close after `after_ms`, and the states the indicator showed from it until
    it was live again (the last one)."""
    close = next(e for e in log if e["what"] == "close" and e["at"] >= after_ms)
    states = [e["state"] for e in log if e["what"] == "state" and e["at"] >= close["at"]]
    return close, states


def live_at(log: list[dict[str, Any]], after_ms: float) -> float:
    lives = (e["at"] for e in log if e["what"] == "state" and e["state"] == "live")
    return float(next(at for at in lives if at > after_ms))


def test_pages_reconnect_at_once_after_a_restart_and_lose_nothing(browser: Any, site: Site) -> None:
    world = site.world
    manager, observer = world.token("manager", "nairobi"), world.token("observer", "nairobi")
    thika_token = world.token("responder", "thika")
    incident = site.api(
        "POST",
        "/incidents",
        manager,
        json={"incident_type": "flood", "title": "Ngong River flood"},
    )
    sandbags = site.api(
        "POST",
        f"/incidents/{incident['id']}/requests",
        manager,
        json={"resource": "sandbags", "quantity": 5000, "priority": "high"},
    )
    generators = site.api(
        "POST",
        f"/incidents/{incident['id']}/requests",
        manager,
        json={"resource": "generator-100kw", "quantity": 3, "priority": "high"},
    )
    card = f'#inbox li[data-request-id="{generators["id"]}"]'
    with (
        signed_in(
            browser, site, f"/board#incident={incident['id']}", observer, init_script=RECORDER
        ) as board,
        signed_in(browser, site, "/respond", thika_token, init_script=RECORDER) as respond,
    ):
        expect(board.locator("#incident-title")).to_have_text("Ngong River flood")
        expect(respond.locator(card)).to_be_visible()
        flow = ClaimFlow(site, thika_token, sandbags["id"])
        flow.start()
        try:
            # Events are flowing to both pages when the service is told to stop.
            expect(board.locator("#feed li")).not_to_have_count(3, timeout=5_000)
            sigterm_ms = time.time() * 1000
            site.server.stop()  # SIGTERM, and waits for the exit
            for page in (board, respond):
                expect(page.locator("#conn")).to_have_attribute("data-state", "reconnecting")
                expect(page.locator("#conn")).to_have_text("Reconnecting…")
            # While it is down, Thika claims a generator (straight into the database:
            # committed, never published, so only a resume from the events table shows it).
            thika = Actor(role=Role.RESPONDER, city_id=world.city_ids["thika"], token_id=None)
            site.clock.now = datetime.now(UTC)
            site.executor.run_sync(
                thika,
                claim_commands.claim_request,
                generators["id"],
                ClaimCreate(quantity=1),
                "claimed-while-down",
            )
            # A restart that takes a while: each page has asked for a ticket again and
            # again by now (with the usual backoff, the next try would be 6 s or more away).
            deadline = time.monotonic() + 30
            while min(tickets_since(page, sigterm_ms) for page in (board, respond)) < 5:
                assert time.monotonic() < deadline, "the pages stopped trying to reconnect"
                time.sleep(0.1)
            site.server.start()  # returns once /readyz answers
            ready_ms = time.time() * 1000

            # A claim clicked right after the restart, whether the page is live yet or not.
            respond.fill(f"{card} input.qty", "1")
            respond.click(f"{card} form.claim-form button[type=submit]")
            expect(respond.locator("#notices")).to_contain_text("Claimed 1 ", timeout=10_000)
            for page in (board, respond):
                expect(page.locator("#conn")).to_have_attribute("data-state", "live")
            time.sleep(0.5)  # a few more claims after the resume
            made = flow.stop()
        finally:
            flow.finish.set()  # also when the test failed: the thread is a daemon

        for name, page in (("board", board), ("respond", respond)):
            log = recorded(page)
            close, states = back_live(log, sigterm_ms)
            assert close["code"] == 1012, (name, log)
            assert states[0] == "reconnecting" and states[-1] == "live", (name, states)
            assert "offline" not in states, (name, states)
            live_ms = live_at(log, ready_ms - 1000)
            print(
                f"{name}: 1012 at +{close['at'] - sigterm_ms:.0f} ms after SIGTERM; "
                f"service ready {ready_ms - close['at']:.0f} ms after the close; "
                f"live again {live_ms - ready_ms:.0f} ms after ready; "
                f"{sum(e['what'] == 'ticket' for e in log if e['at'] > close['at'])} attempts "
                f"to reconnect; states {states}"
            )
            assert live_ms - ready_ms < LIVE_AFTER_READY_MS, (name, log)

        # Every event once on the board, as in the events table: none lost, none twice.
        seqs = site.event_seqs(incident["id"], observer)
        expect(board.locator("#feed li")).to_have_count(len(seqs), timeout=LIVE_WITHIN_MS)
        assert feed_seqs(board) == seqs
        detail = site.api("GET", f"/incidents/{incident['id']}", manager)
        on_sandbags = [c for c in detail["claims"] if c["request_id"] == sandbags["id"]]
        on_generators = [c for c in detail["claims"] if c["request_id"] == generators["id"]]
        assert len(on_sandbags) == made
        expect(
            board.locator(f'#request-list li[data-request-id="{sandbags["id"]}"] .bar')
        ).to_have_attribute("data-claimed", str(made))
        # The generator claimed while down and the one clicked after: two claims, not three.
        assert sorted(c["quantity"] for c in on_generators) == [1, 1], on_generators
        expect(
            board.locator(f'#request-list li[data-request-id="{generators["id"]}"] .bar')
        ).to_have_attribute("data-claimed", "2")
        expect(respond.locator(f"{card} .quantities")).to_contain_text("1 left")
        print(f"{made} claims flowed through the restart; the board shows {len(seqs)} events")


def test_indicator_leaves_live_when_the_browser_goes_offline_and_resumes_online(
    browser: Any, site: Site
) -> None:
    world = site.world
    observer = world.token("observer", "nairobi")
    incident, generators = site.power_cut("Kasarani substation trip", generators=4)
    bar = f'#request-list li[data-request-id="{generators["id"]}"] .bar'
    with signed_in(browser, site, f"/board#incident={incident['id']}", observer) as board:
        expect(board.locator("#feed li")).to_have_count(2)
        board.context.set_offline(True)
        expect(board.locator("#conn")).to_have_attribute("data-state", "offline")
        expect(board.locator("#conn")).to_have_text("Offline")

        # What happens meanwhile does not reach the page, and it does not claim to be live.
        site.api(
            "POST",
            f"/requests/{generators['id']}/claims",
            world.token("responder", "thika"),
            json={"quantity": 2},
            headers={"Idempotency-Key": "while-offline"},
        )
        board.wait_for_timeout(1_500)
        expect(board.locator("#conn")).to_have_attribute("data-state", "offline")
        expect(board.locator(bar)).to_have_attribute("data-claimed", "0")

        back_at = time.monotonic()
        board.context.set_offline(False)
        expect(board.locator("#conn")).to_have_attribute("data-state", "live", timeout=5_000)
        print(f"live {1000 * (time.monotonic() - back_at):.0f} ms after the network returned")
        expect(board.locator(bar)).to_have_attribute("data-claimed", "2", timeout=LIVE_WITHIN_MS)
        seqs = site.event_seqs(incident["id"], observer)
        assert seqs == [1, 2, 3]
        expect(board.locator("#feed li")).to_have_count(len(seqs))
        assert feed_seqs(board) == seqs
