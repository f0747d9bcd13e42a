"""The manager console's token section and the password change, in Chromium: a
manager issues a scoped token for a machine (its secret shown once), rotates and revokes
it; a person changes their password, which signs out their other browser."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import expect

from tests.accounts.people import PASSWORD, make_person
from tests.accounts.test_browser_sign_in import _page, _sign_in
from tests.browser.conftest import Site

NEW_PASSWORD = "violet-harbour-93-thimble-crane"


def _me(site: Site, secret: str) -> int:
    r = httpx.get(f"{site.base_url}/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    return r.status_code


def test_a_manager_issues_rotates_and_revokes_a_token_of_their_city(
    browser: Any, site: Site
) -> None:
    manager = make_person(
        site.executor, site.world, ["manager"], "nairobi", "amina@nairobi.example", "Amina O."
    )
    context, page, errors = _page(browser)
    try:
        page.goto(site.base_url + "/manage")
        _sign_in(page, manager.email, PASSWORD)
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        page.click("#tokens summary")
        page.fill("#token-label", "pump telemetry")
        page.select_option("#token-role", "responder")
        page.select_option("#token-scope", "claims")
        page.fill("#token-days", "30")
        page.click("#token-form button[type=submit]")
        value = page.locator("#token-value")
        expect(value).to_contain_text("amk_")
        first = value.inner_text()
        row = page.locator("#token-list .token").filter(has_text="pump telemetry")
        expect(row).to_have_attribute("data-state", "active")
        expect(row.locator(".token-scopes")).to_have_text("claims")
        expect(row.locator(".token-used")).to_have_text("never used")
        assert _me(site, first) == 200

        row.locator(".token-rotate").click()
        page.click("dialog.confirm button[value=yes]")
        expect(value).not_to_have_text(first)
        second = page.locator("#token-value").inner_text()
        assert second.startswith("amk_")
        assert _me(site, first) == 401 and _me(site, second) == 200
        page.reload()
        page.click("#tokens summary")
        expect(row.locator(".token-used")).to_contain_text("last used")

        row.locator(".token-revoke").click()
        page.click("dialog.confirm button[value=yes]")
        expect(row).to_have_attribute("data-state", "revoked")
        assert _me(site, second) == 401
    finally:
        context.close()
    assert errors == [], errors


def test_changing_the_password_signs_out_the_other_browser(browser: Any, site: Site) -> None:
    manager = make_person(
        site.executor, site.world, ["manager"], "thika", "njoroge@thika.example", "Njoroge"
    )
    first, one, errors = _page(browser)
    second, two, errors2 = _page(browser)
    try:
        for page in (one, two):
            page.goto(site.base_url + "/manage")
            _sign_in(page, manager.email, PASSWORD)
            expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        one.click("#people summary")
        one.fill("#change-current-password", "not-my-password-at-all")
        one.fill("#change-new-password", NEW_PASSWORD)
        one.click("#password-form button[type=submit]")
        expect(one.locator("#notices")).to_contain_text("the current password is wrong")
        one.fill("#change-current-password", PASSWORD)
        one.fill("#change-new-password", NEW_PASSWORD)
        one.click("#password-form button[type=submit]")
        expect(one.locator("#notices")).to_contain_text("1 other session(s) signed out")
        expect(two.locator("#sign-in-error")).to_have_text(
            "You were signed out; sign in again.", timeout=15_000
        )
        _sign_in(two, manager.email, NEW_PASSWORD)
        expect(two.locator("#conn")).to_have_attribute("data-state", "live")
        expect(one.locator("#conn")).to_have_attribute("data-state", "live")
    finally:
        first.close()
        second.close()
    assert errors == [] and errors2 == [], (errors, errors2)
