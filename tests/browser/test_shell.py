"""Every page of the table of pages loads from the one shell, in real Chromium, with the
navigation the table draws, its own module, and no error or refused script or style."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import ConsoleMessage, Page, expect

from service.domain.actors import Role
from service.web.pages import PAGES
from service.web.pages import Page as PageRow
from tests.browser.conftest import Site

NAV = [page for page in PAGES if page.nav_label is not None]


def _open(browser: Any, site: Site, row: PageRow) -> tuple[Any, Page, list[str]]:
    """A fresh context on `row`'s path; the list collects page errors and console errors
    (a script or style the Content-Security-Policy refused is one)."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text}")

    page.on("console", on_console)
    response = page.goto(site.base_url + row.path)
    assert response is not None and response.status == 200, row.path
    return context, page, problems


def test_every_page_loads_from_the_one_shell_with_its_nav(browser: Any, site: Site) -> None:
    for row in PAGES:
        context, page, problems = _open(browser, site, row)
        try:
            expect(page).to_have_title(
                row.title if row.page_id == "index" else f"{row.title} · aidmesh"
            )
            assert page.locator("script#aidmesh-shell").count() == 1
            assert (
                page.locator("script[type=module]").get_attribute("src") == f"/static/{row.module}"
            )
            expect(page.locator("body")).to_have_attribute("data-page", row.page_id)
            links = page.locator("header.topbar nav a")
            expect(links).to_have_text([p.nav_label or "" for p in NAV])
            hrefs = links.evaluate_all("links => links.map((a) => a.getAttribute('href'))")
            assert hrefs == [p.path for p in NAV]
            current = page.locator("header.topbar nav a[aria-current=page]")
            if row.nav_label is None:
                expect(current).to_have_count(0)
            else:
                expect(current).to_have_text(row.nav_label)
            if row.page_id == "index":
                cards = page.locator("#main .cards li")
                expect(cards.locator("h2 a")).to_have_text([p.title for p in NAV])
            elif not row.signs_in:
                # A public page: its module ran and drew its heading, and asks for no token.
                expect(page.locator("#main h1")).to_have_text(row.title)
                expect(page.locator("#sign-in")).to_have_count(0)
            else:
                # The module ran: the shell's sign-in and connection indicator are drawn.
                expect(page.locator("#sign-in h1")).to_have_text(row.title)
                expect(page.locator("#conn")).to_have_attribute("data-state", "offline")
                expect(page.locator("header.topbar .topbar-end")).to_have_count(1)
            page.wait_for_timeout(200)
            assert problems == [], f"{row.path}: {problems}"
        finally:
            context.close()


def test_the_nav_leads_from_the_index_to_each_page(browser: Any, site: Site) -> None:
    context, page, problems = _open(browser, site, PAGES[0])
    try:
        for row in NAV:
            page.locator("header.topbar nav a", has_text=row.nav_label or "").click()
            expect(page).to_have_url(site.base_url + row.path)
            heading = "#sign-in h1" if row.signs_in else "#main h1"
            expect(page.locator(heading)).to_have_text(row.title)
        assert problems == []
    finally:
        context.close()


def test_each_page_signs_in_only_the_roles_its_row_names(browser: Any, site: Site) -> None:
    for row in PAGES:
        if row.roles is None or not row.signs_in:
            continue
        # An observer's token, or the admin's where observers may read the page.
        refused = Role.ADMIN if Role.OBSERVER in row.roles else Role.OBSERVER
        assert refused not in row.roles
        token = site.world.token(refused.value, None if refused is Role.ADMIN else "nairobi")
        context, page, problems = _open(browser, site, row)
        try:
            page.click("#advanced-sign-in summary")
            page.fill("#token", token)
            page.press("#token", "Enter")
            wanted = " or ".join(role.value for role in row.roles)
            expect(page.locator("#token-error")).to_have_text(
                f"This page needs a {wanted} token; this one is a {refused.value} token."
            )
            expect(page.locator("#conn")).not_to_have_attribute("data-state", "live")
            assert problems == [], f"{row.path}: {problems}"
        finally:
            context.close()
