"""The second factor on the pages (issue #19), in Chromium: a manager sets it up from
/manage's "your account" (the secret and otpauth:// URI shown as text), then signs in with
a code in the sign-in form's code field; a manager of a city that requires it is let only
set it up, then into the console. Codes are made with pyotp, at the real time the served
aidmesh uses."""

from __future__ import annotations

import time
from typing import Any

import pyotp
from playwright.sync_api import expect

from tests.accounts.people import PASSWORD, make_person
from tests.accounts.test_browser_sign_in import _page, _sign_in
from tests.browser.conftest import Site


def _code(secret: str) -> str:
    """The next step's code: accepted now and in the next 30 s (one step of drift is
    allowed), and never the step an earlier action in the test may have used."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def _set_up(page: Any) -> str:
    page.click("#totp-enrol")
    secret = page.locator("#totp-secret").inner_text()
    expect(page.locator("#totp-uri")).to_contain_text(f"secret={secret}")
    expect(page.locator("#totp-uri")).to_contain_text("otpauth://totp/")
    page.fill("#totp-confirm-code", pyotp.TOTP(secret).now())
    page.click("#totp-confirm button")
    expect(page.locator("#totp-state")).to_contain_text("On")
    return str(secret)


def test_a_manager_sets_up_a_second_factor_then_signs_in_with_a_code(
    browser: Any, site: Site
) -> None:
    manager = make_person(
        site.executor, site.world, ["manager"], "nairobi", "otp@nairobi.example", "Wanjiru"
    )
    context, page, errors = _page(browser)
    try:
        page.goto(site.base_url + "/manage")
        _sign_in(page, manager.email, PASSWORD)
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        page.click("#people summary")
        expect(page.locator("#totp-state")).to_contain_text("Off")
        secret = _set_up(page)
        page.click("#sign-out")
        expect(page.locator("#sign-in")).to_be_visible()

        _sign_in(page, manager.email, PASSWORD)
        expect(page.locator("#sign-in-error")).to_contain_text("second factor")
        page.fill("#sign-in-code", f"{(int(_code(secret)) + 1) % 1_000_000:06d}")
        _sign_in(page, manager.email, PASSWORD)
        expect(page.locator("#sign-in-error")).to_have_text("Wrong or already used code.")
        page.fill("#sign-in-code", _code(secret))
        _sign_in(page, manager.email, PASSWORD)
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        expect(page.locator("#who-name")).to_have_text("Wanjiru")
    finally:
        context.close()
    assert errors == [], errors


def test_a_manager_of_a_city_that_requires_it_may_only_set_it_up_first(
    browser: Any, site: Site
) -> None:
    manager = make_person(
        site.executor, site.world, ["manager"], "thika", "must@thika.example", "Kamau"
    )
    thika = site.world.city_ids["thika"]
    site.api(
        "PUT",
        f"/cities/{thika}/managers-need-totp",
        site.world.token("admin"),
        json={"required": True},
    )
    context, page, errors = _page(browser)
    try:
        page.goto(site.base_url + "/manage")
        _sign_in(page, manager.email, PASSWORD)
        expect(page.locator("#totp")).to_contain_text("Your city requires a second factor")
        expect(page.locator("#conn")).not_to_have_attribute("data-state", "live")
        _set_up(page)
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        expect(page.locator("#who-name")).to_have_text("Kamau")
    finally:
        context.close()
    assert errors == [], errors
