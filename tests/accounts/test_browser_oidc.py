"""Signing in with the city's OpenID Connect provider on the pages, in Chromium, against
a real, certified provider (npm's oidc-provider on Node.js) on a loopback port: the
provider's button beside the password form, its login form, and back into the console
with the roles the person's groups map to; an unmapped person, a tampered state and an
expired sign-in refused with no session; and no secret of any of it in the log."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
from playwright.sync_api import expect

from service.commands.oidc import CALLBACK_PATH
from service.sessions import CSRF_COOKIE, SESSION_COOKIE
from tests.accounts.oidc import PROVIDER_PASSWORD, provider_body, start_provider
from tests.accounts.people import PASSWORD, make_person
from tests.browser.conftest import Site
from tests.procs import OidcProvider
from tests.support import missing


@pytest.fixture(scope="module")
def provider(
    site: Site, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[OidcProvider, str]]:
    """The provider, with aidmesh's callback registered, set as Nairobi's own."""
    if OidcProvider.node() is None:
        missing("the OpenID Connect tests need Node.js (node and npm)")
    running, secret = start_provider(
        tmp_path_factory.mktemp("oidc"), [site.base_url + CALLBACK_PATH]
    )
    try:
        site.api(
            "PUT",
            f"/cities/{site.world.city_ids['nairobi']}/sign-in-provider",
            site.world.token("admin"),
            json=provider_body(running, secret),
        )
        yield running, secret
    finally:
        running.stop()


def _page(browser: Any) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return context, page, errors


def _at_provider(page: Any, login: str) -> None:
    """On the provider's own login form: any password is good there."""
    page.wait_for_selector("input[name=login]")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", PROVIDER_PASSWORD)
    page.click("button[type=submit]")


def _session_cookie(context: Any) -> str | None:
    return next((c["value"] for c in context.cookies() if c["name"] == SESSION_COOKIE), None)


def test_a_coordinator_signs_in_with_the_citys_provider_as_the_manager_their_groups_make_them(
    browser: Any, site: Site, provider: tuple[OidcProvider, str]
) -> None:
    context, page, errors = _page(browser)
    try:
        page.goto(site.base_url + "/manage")
        expect(page.locator("#sign-in h1")).to_have_text("Manager console")
        button = page.locator("#provider-sign-in a")
        expect(button).to_have_text("Sign in with Nairobi EMS")
        # Beside the password form, not instead of it.
        expect(page.locator("#password")).to_be_visible()
        button.click()
        assert page.url.startswith(provider[0].issuer)
        _at_provider(page, "bruno")
        page.wait_for_url(site.base_url + "/manage")
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        expect(page.locator("#who-name")).to_have_text("Bruno Kamau")
        expect(page.locator(".who-role")).to_have_text("manager")
        # The same session as a password sign-in's: HttpOnly, SameSite=Lax, with CSRF.
        cookies = {c["name"]: c for c in context.cookies()}
        assert cookies[SESSION_COOKIE]["httpOnly"] is True
        assert cookies[SESSION_COOKIE]["sameSite"] == "Lax"
        assert cookies[CSRF_COOKIE]["httpOnly"] is False
        assert "aidmesh_session" not in page.evaluate("document.cookie")
        page.reload()
        expect(page.locator("#who-name")).to_have_text("Bruno Kamau")
        assert errors == []
    finally:
        context.close()


def test_a_dispatcher_is_a_responder_on_the_respond_page(
    browser: Any, site: Site, provider: tuple[OidcProvider, str]
) -> None:
    context, page, errors = _page(browser)
    try:
        page.goto(site.base_url + "/respond")
        page.click("#provider-sign-in a")
        _at_provider(page, "amina")
        page.wait_for_url(site.base_url + "/respond")
        expect(page.locator("#who-name")).to_have_text("Amina Otieno")
        expect(page.locator(".who-role")).to_have_text("responder")
        expect(page.locator(".who-city")).to_have_text("Nairobi")
        assert errors == []
    finally:
        context.close()


def test_an_unmapped_person_is_told_so_and_gets_no_session(
    browser: Any, site: Site, provider: tuple[OidcProvider, str]
) -> None:
    context, page, _ = _page(browser)
    try:
        page.goto(site.base_url + "/board")
        page.click("#provider-sign-in a")
        _at_provider(page, "zawadi")
        expect(page.locator("#sign-in-refused h1")).to_have_text("Your account is not yet mapped")
        assert _session_cookie(context) is None
        page.click("#back-to-sign-in")
        expect(page.locator("#sign-in")).to_be_visible()
    finally:
        context.close()


def _tampered(url: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    state = query["state"]
    query["state"] = state[:-1] + ("A" if state[-1] != "A" else "B")
    return parts._replace(query=urlencode(query)).geturl()


def _tamper_on_the_way_back(context: Any, issuer: str) -> Any:
    """A route handler for the provider's login form: it posts the form, follows the
    provider's own redirects, and hands the browser the redirect back to aidmesh with
    its state changed, as a meddler between the two would."""

    def handle(route: Any) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        response = route.fetch(max_redirects=0)
        location = urljoin(route.request.url, response.headers.get("location", ""))
        while location.startswith(issuer):
            response = context.request.get(location, max_redirects=0)
            location = urljoin(location, response.headers.get("location", ""))
        assert CALLBACK_PATH in location, location
        route.fulfill(status=303, headers={"Location": _tampered(location)})

    return handle


def test_a_tampered_state_is_refused_and_gets_no_session(
    browser: Any, site: Site, provider: tuple[OidcProvider, str]
) -> None:
    context, page, _ = _page(browser)
    try:
        issuer = provider[0].issuer
        page.route(
            lambda url: url.startswith(issuer + "/interaction/"),
            _tamper_on_the_way_back(context, issuer),
        )
        page.goto(site.base_url + "/board")
        page.click("#provider-sign-in a")
        _at_provider(page, "amina")
        expect(page.locator("#sign-in-refused h1")).to_have_text("This sign-in cannot be finished")
        assert _session_cookie(context) is None
    finally:
        context.close()


def _restarted(site: Site, **env: str) -> None:
    site.server.stop()
    site.server.env.update(env)
    site.server.start()


def test_a_sign_in_that_outlives_its_time_is_refused(
    browser: Any, site: Site, provider: tuple[OidcProvider, str]
) -> None:
    _restarted(site, AIDMESH_OIDC_SIGN_IN_TTL_S="1")
    context, page, _ = _page(browser)
    try:
        page.goto(site.base_url + "/board")
        page.click("#provider-sign-in a")
        page.wait_for_selector("input[name=login]")
        time.sleep(1.5)  # the person lingers at the provider past the sign-in's time
        _at_provider(page, "amina")
        expect(page.locator("#sign-in-refused h1")).to_have_text("This sign-in has expired")
        assert _session_cookie(context) is None
    finally:
        context.close()
        del site.server.env["AIDMESH_OIDC_SIGN_IN_TTL_S"]
        _restarted(site)


def test_no_code_state_session_or_secret_of_a_provider_sign_in_reaches_the_log(
    browser: Any, site: Site, provider: tuple[OidcProvider, str]
) -> None:
    site.server.log_path.unlink(missing_ok=True)
    _restarted(site, AIDMESH_LOG_LEVEL="debug")
    callbacks: list[str] = []
    context, page, _ = _page(browser)
    try:
        page.on(
            "request",
            lambda request: callbacks.append(request.url) if CALLBACK_PATH in request.url else None,
        )
        page.goto(site.base_url + "/board")
        page.click("#provider-sign-in a")
        _at_provider(page, "amina")
        expect(page.locator("#who-name")).to_have_text("Amina Otieno")
        session = _session_cookie(context)
        csrf = next(c["value"] for c in context.cookies() if c["name"] == CSRF_COOKIE)
    finally:
        context.close()
        site.server.env["AIDMESH_LOG_LEVEL"] = "warning"
        _restarted(site)
    (callback,) = callbacks
    query = parse_qs(urlsplit(callback).query)
    log = site.server.log_path.read_text(encoding="utf-8", errors="replace")
    assert "/auth/oidc/callback" in log  # the run was logged at debug level...
    secrets = {
        "authorization code": query["code"][0],
        "state": query["state"][0],
        "session id": session or "",
        "CSRF token": csrf,
        "client secret": provider[1],
        "provider password": PROVIDER_PASSWORD,
    }
    for what, secret in secrets.items():  # ...and none of these is in it, whole or half
        assert len(secret) >= 16, what
        for piece in (secret, secret[: len(secret) // 2]):
            assert piece not in log, f"the {what} is in the log"


def test_a_manager_connects_the_citys_provider_on_the_people_page_and_it_signs_people_in(
    browser: Any, site: Site, provider: tuple[OidcProvider, str]
) -> None:
    manager = make_person(
        site.executor, site.world, ["manager"], "nairobi", "wanjiru@nairobi.example", "Wanjiru"
    )
    context, page, errors = _page(browser)
    try:
        page.goto(site.base_url + "/manage")
        page.fill("#email", manager.email)
        page.fill("#password", PASSWORD)
        page.press("#password", "Enter")
        page.click("#people summary")
        status = page.locator("#provider-status")
        expect(status).to_contain_text('Connected: "Sign in with Nairobi EMS"')
        expect(status).to_contain_text(site.base_url + CALLBACK_PATH)
        expect(page.locator("#provider-secret")).to_have_value("")  # never shown again
        expect(page.locator("#provider-rules")).to_have_value(
            "groups = nairobi-dispatch -> responder\ngroups = nairobi-coordinators -> manager"
        )
        page.fill("#provider-rules", "groups = nairobi-dispatch -> observer")
        page.fill("#provider-label", "Nairobi County")
        page.click("#provider-form button[type=submit]")
        expect(status).to_contain_text('Connected: "Sign in with Nairobi County"')
        page.fill("#provider-rules", "groups nairobi-dispatch")
        page.click("#provider-form button[type=submit]")
        expect(page.locator(".notice.error")).to_contain_text("Rule 1")
        assert errors == []
    finally:
        context.close()
    context, page, _ = _page(browser)
    try:
        page.goto(site.base_url + "/board")
        button = page.locator("#provider-sign-in a")
        expect(button).to_have_text("Sign in with Nairobi County")
        button.click()
        _at_provider(page, "amina")
        expect(page.locator(".who-role")).to_have_text("observer")  # the new rule
    finally:
        context.close()
