"""Signing in on the pages (issue #19, part 4), in Chromium: an invitation's link to
choosing a password, email and password into a live console, the session kept across a
reload, the people section of /manage, sign-out; the token stays an advanced option."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.accounts.people import PASSWORD, make_person
from tests.browser.conftest import Site


def _page(browser: Any) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return context, page, errors


def _sign_in(page: Any, email: str, password: str) -> None:
    page.fill("#email", email)
    page.fill("#password", password)
    page.press("#password", "Enter")


def test_a_manager_signs_in_with_a_password_invites_someone_who_signs_up(
    browser: Any, site: Site
) -> None:
    manager = make_person(
        site.executor, site.world, ["manager"], "nairobi", "amina@nairobi.example", "Amina O."
    )
    context, page, errors = _page(browser)
    try:
        page.goto(site.base_url + "/manage")
        expect(page.locator("#sign-in h1")).to_have_text("Manager console")
        _sign_in(page, manager.email, "not-my-password-at-all")
        expect(page.locator("#sign-in-error")).to_have_text("Wrong email or password.")
        _sign_in(page, manager.email, PASSWORD)
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        expect(page.locator("#who-name")).to_have_text("Amina O.")
        # The session is a cookie the page cannot read; a reload stays signed in.
        assert "aidmesh_session" not in page.evaluate("document.cookie")
        page.reload()
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")

        page.click("#people summary")
        page.fill("#invite-email", "baraka@nairobi.example")
        page.fill("#invite-name", "Baraka")
        page.select_option("#invite-role", "responder")
        page.click("#invite-form button")
        link = page.locator("#invite-link")
        expect(link).to_contain_text("#signup=")
        expect(page.locator("#people-list .person")).to_have_count(2)
        invite_url = link.inner_text()

        page.click("#sign-out")
        expect(page.locator("#sign-in")).to_be_visible()
        page.reload()
        expect(page.locator("#sign-in")).to_be_visible()  # signed out for good
    finally:
        context.close()

    context, page, errors2 = _page(browser)
    try:
        page.goto(invite_url)
        page.fill("#new-password", "short")
        page.fill("#new-password-again", "short")
        page.click("#sign-up button[type=submit]")
        expect(page.locator("#new-password")).to_be_visible()  # refused by the browser or us
        page.fill("#new-password", PASSWORD)
        page.fill("#new-password-again", PASSWORD)
        page.click("#sign-up button[type=submit]")
        expect(page.locator("#sign-in-error")).to_have_text("Your account is ready: sign in.")
        expect(page.locator("#email")).to_have_value("baraka@nairobi.example")
        page.fill("#password", PASSWORD)
        page.press("#password", "Enter")
        # A responder on the board (any role), live with the session's websocket.
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        expect(page.locator("#who-name")).to_have_text("Baraka")
    finally:
        context.close()
    assert errors == [] and errors2 == [], (errors, errors2)


def test_a_person_whose_role_does_not_fit_the_page_is_told_and_a_token_still_works(
    browser: Any, site: Site
) -> None:
    observer = make_person(site.executor, site.world, ["observer"], "thika", "obs@thika.example")
    context, page, errors = _page(browser)
    try:
        page.goto(site.base_url + "/respond")
        _sign_in(page, observer.email, PASSWORD)
        expect(page.locator("#sign-in-error")).to_have_text(
            "This page needs a responder or manager account; this one is a observer account."
        )
        # The advanced option: a machine token, in this tab only.
        page.click("#advanced-sign-in summary")
        page.fill("#token", site.world.token("responder", "thika"))
        page.press("#token", "Enter")
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    finally:
        context.close()
    assert errors == [], errors


def test_signing_out_everywhere_signs_out_the_other_browser_at_once(
    browser: Any, site: Site
) -> None:
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
        one.click("#sign-out-everywhere")
        expect(one.locator("#sign-in")).to_be_visible()
        # The other browser's socket is closed by the server; the page asks to sign in.
        expect(two.locator("#sign-in-error")).to_have_text(
            "You were signed out; sign in again.", timeout=15_000
        )
    finally:
        first.close()
        second.close()
    assert errors == [] and errors2 == [], (errors, errors2)
