"""Pages that open without a network, in real Chromium against a real aidmesh process.

The service worker keeps the shell and every asset of the release; each page keeps the
last answer to every GET it read, per person. Reloaded with the browser offline and the
service stopped, the responder console opens from those copies, marked with their age,
time and zone; a claim made meanwhile waits in the outbox and is made once on return,
and never under the next person to sign in on the browser; sign-out forgets every kept
answer; a worker of a new release deletes the old caches.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import httpx
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect

from tests.accounts.people import PASSWORD, make_person
from tests.browser.conftest import Site
from tests.browser.test_outbox import card, claims_made, stage
from tests.browser.test_pages import signed_in

# Names of the caches the page's origin holds, and the addresses each one keeps.
CACHES = """
async () => {
  const out = {};
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    out[name] = (await cache.keys()).map((r) => new URL(r.url).pathname + new URL(r.url).search);
  }
  return out;
}
"""
# Make every kept answer `minutes` older, as if the page had last been read then.
AGE_COPIES = """
async (minutes) => {
  for (const name of await caches.keys()) {
    if (!name.startsWith("aidmesh-data-")) continue;
    const cache = await caches.open(name);
    for (const request of await cache.keys()) {
      const copy = await (await cache.match(request)).json();
      const then = new Date(copy.stored_at).getTime() - minutes * 60_000;
      copy.stored_at = new Date(then).toISOString();
      const headers = { "Content-Type": "application/json" };
      await cache.put(request, new Response(JSON.stringify(copy), { headers }));
    }
  }
}
"""


def caches_of(page: Page) -> dict[str, list[str]]:
    found: dict[str, list[str]] = page.evaluate(CACHES)
    return found


def wait_until_kept(page: Page, path: str) -> None:
    """The service worker controls the page and the page has kept its answer to `path`."""
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    page.wait_for_function(
        """async (path) => {
          for (const name of await caches.keys()) {
            if (!name.startsWith("aidmesh-data-")) continue;
            const keys = await (await caches.open(name)).keys();
            if (keys.some((r) => r.url.endsWith(path))) return true;
          }
          return false;
        }""",
        arg=path,
    )


def test_the_worker_is_served_at_the_root_with_this_release_and_every_asset(site: Site) -> None:
    worker = httpx.get(site.base_url + "/sw.js")
    assert worker.status_code == 200
    assert worker.headers["content-type"].startswith("text/javascript")
    assert worker.headers["service-worker-allowed"] == "/"
    page = httpx.get(site.base_url + "/respond").text
    release = re.search(r'"release":"([^"]+)"', page)
    assert release is not None
    assert f'const RELEASE = "{release.group(1)}";' in worker.text
    precache = re.search(r"const PRECACHE = (\[.*\]);", worker.text)
    assert precache is not None
    for asset in ("/static/shell.js", "/static/api.js", "/static/outbox.js", "/static/aidmesh.css"):
        assert f'"{asset}"' in precache.group(1)
    for path in ("/", "/board", "/respond", "/manage"):
        assert f'"{path}"' in precache.group(1)
    print(f"release {release.group(1)}: {precache.group(1).count(',') + 1} addresses kept")


def test_reload_offline_opens_the_last_known_state_marked_with_its_age(
    browser: Any, site: Site
) -> None:
    incident, (cots,) = stage(site, "Mathare flood shelter", ("cots", 80))
    token = site.world.token("responder", "thika")
    with signed_in(browser, site, "/respond", token, timezone_id="Africa/Nairobi") as respond:
        expect(respond.locator(f"{card(cots)} .quantities")).to_contain_text("80 left")
        expect(respond.locator("#stale")).to_be_hidden()
        wait_until_kept(respond, "/api/v1/requests?limit=500&offset=0")
        respond.evaluate(AGE_COPIES, 7)
        kept = caches_of(respond)
        shell = [paths for name, paths in kept.items() if name.startswith("aidmesh-shell-")]
        assert shell and "/respond" in shell[0] and "/static/respond.js" in shell[0]
        assert not [p for p in shell[0] if p.startswith("/api/")], shell[0]

        # No network and no service: the page opens from the worker's cache, with the
        # last known state from the page's own copies.
        site.server.stop()
        respond.context.set_offline(True)
        respond.reload()
        respond.evaluate("window.__sameDocument = true")
        stale = respond.locator("#stale")
        expect(stale).to_be_visible()
        expect(stale).to_contain_text("Last updated 7 min ago (offline)")
        # Its time, with the viewer's zone (Nairobi: EAT, or GMT+3 as Chromium names it).
        expect(stale.locator("time").last).to_have_text(
            re.compile(r"^\d\d:\d\d:\d\d (EAT|GMT\+3)$")
        )
        expect(respond.locator(f"{card(cots)} .quantities")).to_contain_text("80 left")
        expect(respond.locator("#conn")).not_to_have_attribute("data-state", "live")
        print(f"offline reload: {stale.text_content()}")

        # A claim made on the copy waits, and is made once when the link returns.
        respond.fill(f"{card(cots)} input.qty", "4")
        respond.click(f"{card(cots)} form.claim-form button[type=submit]")
        expect(respond.locator("#outbox")).to_contain_text("1 action waiting to be sent")
        site.server.start()
        respond.context.set_offline(False)
        expect(respond.locator("#conn")).to_have_attribute("data-state", "live", timeout=15_000)
        expect(stale).to_be_hidden()
        expect(respond.locator("#outbox")).to_be_hidden(timeout=15_000)
        expect(respond.locator(f"{card(cots)} .quantities")).to_contain_text("76 left")
        claims, events = claims_made(site, incident["id"])
        assert [c["quantity"] for c in claims] == [4] and events == 1

        # Sign-out forgets every kept answer: the next person sees none of them.
        respond.click("#sign-out")
        expect(respond.locator("#sign-in")).to_be_visible()
        respond.evaluate("window.__sameDocument = true")
        left = caches_of(respond)
        assert not [name for name in left if name.startswith("aidmesh-data-")], left
        assert [name for name in left if name.startswith("aidmesh-shell-")], left


def test_a_page_never_read_does_not_open_offline_with_someone_elses_answers(
    browser: Any, site: Site
) -> None:
    thika = site.world.token("responder", "thika")
    with signed_in(browser, site, "/respond", thika) as respond:
        wait_until_kept(respond, "/api/v1/me")
        # The same browser tab, another token: its answers are kept under another key.
        respond.evaluate(
            "(token) => sessionStorage.setItem('aidmesh.token.respond', token)",
            site.world.token("responder", "nairobi"),
        )
        respond.context.set_offline(True)
        with contextlib.suppress(PlaywrightError):
            respond.reload()
        respond.evaluate("window.__sameDocument = true")
        # The shell opens (the worker's), but nothing of Thika's is shown to Nairobi.
        expect(respond.locator("#sign-in")).to_be_visible()
        expect(respond.locator("#inbox")).to_have_count(0)
        expect(respond.locator("#stale")).to_be_hidden()
        respond.context.set_offline(False)


# Another release's caches, then a worker of this release activating (a second
# registration, so that it installs and activates now): what caches are left.
RELEASE_CHANGE = """
async () => {
  await (await caches.open("aidmesh-shell-0.0.1-0123abcd")).put("/respond", new Response("old"));
  await (await caches.open("aidmesh-data-0.0.1-0123abcd")).put("/x", new Response("old"));
  await (await caches.open("someone-elses")).put("/y", new Response("kept"));
  const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/static/" });
  const worker = registration.installing || registration.waiting || registration.active;
  await new Promise((resolve) => {
    if (worker.state === "activated") resolve();
    worker.addEventListener("statechange", () => worker.state === "activated" && resolve());
  });
  return caches.keys();
}
"""


def test_a_new_release_replaces_the_old_releases_caches(browser: Any, site: Site) -> None:
    token = site.world.token("observer", "nairobi")
    with signed_in(browser, site, "/board", token) as board:
        wait_until_kept(board, "/api/v1/me")
        release = re.search(
            r'"release":"([^"]+)"', board.locator("#aidmesh-shell").text_content() or ""
        )
        assert release is not None
        left = sorted(board.evaluate(RELEASE_CHANGE))
        print(f"caches after this release's worker activated: {left}")
        assert left == sorted(
            [
                f"aidmesh-shell-{release.group(1)}",
                f"aidmesh-data-{release.group(1)}",
                "someone-elses",
            ]
        )


def test_a_persons_waiting_claim_is_never_sent_as_the_next_person_on_the_browser(
    browser: Any, site: Site
) -> None:
    incident, (cots,) = stage(site, "Dandora dumpsite fire", ("cots", 30))
    first = make_person(
        site.executor, site.world, ["responder"], "thika", "wanjiku@thika.example", "Wanjiku"
    )
    second = make_person(
        site.executor, site.world, ["responder"], "thika", "otieno@thika.example", "Otieno"
    )
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def sign_in(email: str) -> None:
        page.fill("#email", email)
        page.fill("#password", PASSWORD)
        page.press("#password", "Enter")
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")

    try:
        page.goto(site.base_url + "/respond")
        sign_in(first.email)
        expect(page.locator(card(cots))).to_be_visible()
        site.server.stop()
        page.fill(f"{card(cots)} input.qty", "2")
        page.click(f"{card(cots)} form.claim-form button[type=submit]")
        expect(page.locator("#outbox")).to_contain_text("1 action waiting to be sent")
        # Her session ends while the service is away (the browser drops its cookies).
        context.clear_cookies()
        site.server.start()
        expect(page.locator("#sign-in")).to_be_visible(timeout=30_000)

        # The next person on this browser: her claim is not his to send.
        sign_in(second.email)
        expect(page.locator(card(cots))).to_be_visible()
        expect(page.locator("#outbox")).to_be_hidden()
        page.wait_for_timeout(3_000)  # past the outbox's retries
        claims, events = claims_made(site, incident["id"])
        assert claims == [] and events == 0, claims
        page.click("#sign-out")
        expect(page.locator("#sign-in")).to_be_visible()

        # She signs in again: her claim is sent, once.
        sign_in(first.email)
        expect(page.locator(f"{card(cots)} .quantities")).to_contain_text("28 left", timeout=15_000)
        expect(page.locator("#outbox")).to_be_hidden()
        page.wait_for_timeout(1_500)
        claims, events = claims_made(site, incident["id"])
        print(f"her claim, after his session: {[c['quantity'] for c in claims]}, {events} event(s)")
        assert [c["quantity"] for c in claims] == [2] and events == 1
        assert errors == []
    finally:
        context.close()
