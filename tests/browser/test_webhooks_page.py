"""The webhooks page in real Chromium against a real aidmesh process and a real receiver
on loopback (allowed through the setting, as an on-premises deployment would allow its
own systems): register and see the secret once, deliveries arrive in the log, pause,
resume, ping, redeliver, a disabled endpoint shows without a reload, delete."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Site, running_site
from tests.browser.test_pages import signed_in
from tests.webhooks.receiver import Receiver, running

WEBHOOK_ENV = {
    "AIDMESH_WEBHOOK_ALLOW_HTTP": "true",
    "AIDMESH_WEBHOOK_ALLOWED_PRIVATE": '["127.0.0.1/32"]',
    "AIDMESH_WEBHOOK_POLL_INTERVAL_S": "0.2",
    "AIDMESH_WEBHOOK_RETRY_BASE_S": "0.2",
    "AIDMESH_WEBHOOK_RETRY_CAP_S": "1",
    "AIDMESH_WEBHOOK_TIMEOUT_S": "2",
    "AIDMESH_RATE_LIMIT_PER_S": "0",
}
SEEN_WITHIN_MS = 10_000  # the page polls every 3 s; a notice refreshes at once


@pytest.fixture(scope="module")
def hook_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with running_site(tmp_path_factory.mktemp("webhooks-page"), WEBHOOK_ENV) as started:
        yield started


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running(Receiver(behaviours={"/gone": lambda _: (410, {}, 0.0)})) as started:
        yield started


def wait_for(check: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_manager_runs_an_endpoint_from_the_page(
    browser: Any, hook_site: Site, receiver: Receiver
) -> None:
    site = hook_site
    manager = site.world.token("manager", "nairobi")
    with signed_in(browser, site, "/webhooks", manager) as page:
        expect(page.locator("#webhooks-title")).to_have_text("Webhooks of Nairobi")
        expect(page.locator("nav a[aria-current=page]")).to_have_text("Webhooks")

        # Register: the secret shows once, with its warning and a copy button.
        if page.locator("#register").get_attribute("open") is None:
            page.click("#register summary")
        page.fill("#webhook-url", receiver.url("/hook"))
        page.fill("#webhook-description", "EOC board")
        page.click("#register-form button[type=submit]")
        expect(page.locator("#secret-value")).to_have_text(_whsec(), timeout=SEEN_WITHIN_MS)
        secret = page.inner_text("#secret-value")
        expect(page.locator("#secret-box")).to_contain_text("will not be shown again")
        expect(page.locator("#copy-secret")).to_be_visible()
        endpoint = site.api("GET", "/webhooks", manager)["data"][0]
        assert "secret" not in endpoint, "the API shows the secret again"
        page.click("#secret-done")
        expect(page.locator("#secret-box")).to_be_hidden()
        assert secret not in page.content(), "the secret is still in the page"
        expect(page.locator("#endpoint-status")).to_have_attribute("data-status", "active")

        # What happens in the city reaches the receiver and shows in the log.
        incident = site.api(
            "POST",
            "/incidents",
            manager,
            json={"incident_type": "flood", "title": "Webhook page flood", "severity": "minor"},
        )
        wait_for(lambda: len(receiver.at("/hook")) >= 1)
        delivered = page.locator('#delivery-log tr[data-outcome="delivered"]')
        expect(delivered.first).to_be_visible(timeout=SEEN_WITHIN_MS)
        expect(page.locator("#delivery-log")).to_contain_text("incident.declared")
        expect(page.locator("#delivery-log")).to_contain_text("200")
        first_id = receiver.at("/hook")[0].event_id
        assert receiver.at("/hook")[0].event["incident_id"] == incident["id"]

        # Pause: nothing goes out; resume: what waited goes out, in order.
        page.click("#pause")
        expect(page.locator("#endpoint-status")).to_have_attribute("data-status", "paused")
        before = len(receiver.at("/hook"))
        site.api(
            "POST",
            f"/incidents/{incident['id']}/requests",
            manager,
            json={"resource": "high-capacity-pump", "quantity": 2, "priority": "high"},
        )
        time.sleep(1.0)
        assert len(receiver.at("/hook")) == before, "a paused endpoint was sent to"
        page.click("#resume")
        expect(page.locator("#endpoint-status")).to_have_attribute("data-status", "active")
        wait_for(lambda: len(receiver.at("/hook")) > before)
        assert receiver.at("/hook")[-1].event["type"] == "request.raised"

        # Ping: a test event, in the log.
        page.click("#ping")
        wait_for(lambda: any(r.event["type"] == "webhook.ping" for r in receiver.at("/hook")))
        expect(page.locator('#delivery-log tr[data-source="ping"]')).to_have_count(
            1, timeout=SEEN_WITHIN_MS
        )

        # Redeliver one attempt: the receiver sees that event id again.
        row = page.locator(f'#delivery-log tr:has(td[title="{first_id}"])').first
        row.locator("button.redeliver").click()
        wait_for(lambda: sum(r.event_id == first_id for r in receiver.at("/hook")) == 2)
        expect(page.locator('#delivery-log tr[data-source="redelivery"]')).to_have_count(
            1, timeout=SEEN_WITHIN_MS
        )
        page.click("#redeliver-failed")
        expect(page.locator("#notices")).to_contain_text("No failed deliveries")

        # Another endpoint answers 410: it is disabled, and this page, the manager
        # console and the board say so without a reload (the console and the board
        # learn it from the websocket notice: they do not poll).
        with (
            signed_in(browser, site, "/manage", manager) as console,
            signed_in(browser, site, "/board", manager) as board,
        ):
            expect(console.locator("#webhook-banner")).to_be_hidden()
            site.api("POST", "/webhooks", manager, json={"url": receiver.url("/gone")})
            site.api(
                "POST",
                f"/incidents/{incident['id']}/requests",
                manager,
                json={"resource": "high-capacity-pump", "quantity": 1, "priority": "low"},
            )
            for shown in (page, console, board):
                banner = shown.locator("#webhook-banner")
                expect(banner).to_be_visible(timeout=SEEN_WITHIN_MS)
                expect(banner).to_contain_text(receiver.url("/gone"))
                expect(banner).to_contain_text("410")
        expect(page.locator('#endpoint-list li[data-status="disabled"]')).to_have_count(1)

        # Delete, after confirming; "Keep as is" first keeps it.
        page.click('#endpoint-list li[data-status="active"] button')
        page.click("#delete")
        page.click('dialog.confirm button[value="no"]')
        expect(page.locator("#endpoint-list li[data-endpoint-id]")).to_have_count(2)
        page.click("#delete")
        page.click('dialog.confirm button[value="yes"]')
        expect(page.locator("#endpoint-list li[data-endpoint-id]")).to_have_count(1)
        assert [e["url"] for e in site.api("GET", "/webhooks", manager)["data"]] == [
            receiver.url("/gone")
        ]


def test_admin_chooses_the_city(browser: Any, hook_site: Site) -> None:
    admin = hook_site.world.token("admin")
    with signed_in(browser, hook_site, "/webhooks", admin) as page:
        page.select_option("#webhook-city", label="Thika")
        expect(page.locator("#webhooks-title")).to_have_text("Webhooks of Thika")
        expect(page.locator("#endpoint-list")).to_contain_text("No endpoints yet")


def _whsec() -> Any:
    import re

    return re.compile(r"^whsec_[A-Za-z0-9+/=]{20,}$")
