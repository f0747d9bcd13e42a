"""Every page in German and in Swahili, in real Chromium: chosen from the browser's
language (Playwright's `locale`) and by the header's switcher, which the browser
remembers and tells the server, for the pages it words itself. No English message of the
catalogue is left on the page: every text node, title, label and tooltip is walked
against i18n-en.json's messages that the page's language says differently."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import Page, expect

from service.commands.oidc import CALLBACK_PATH
from service.web.pages import PAGES
from service.web.routes import STATIC_DIR
from tests.browser.conftest import Site

LANGUAGES = ("de", "sw")
PLACEHOLDER = re.compile(r"\{\w+\}")


def catalogue(code: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((STATIC_DIR / f"i18n-{code}.json").read_text())
    return loaded


def forms(value: Any) -> list[str]:
    """A message's texts: itself, or each of its plural forms."""
    return list(value.values()) if isinstance(value, dict) else [value]


@functools.cache
def english_patterns(code: str) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """A pattern for each English message that `code` words differently: a whole text
    of the page that matches one is English left untranslated. A message made mostly of
    placeholders ("{count} {resource}") says too little to tell, and is left out."""
    english, other = catalogue("en"), catalogue(code)
    patterns = []
    for key, value in english.items():
        translated = set(forms(other[key]))
        for text in forms(value):
            if text in translated:
                continue
            literal = PLACEHOLDER.sub("", text)
            if not re.search(r"[A-Za-z]{3}", literal):
                continue
            parts = [re.escape(part) for part in PLACEHOLDER.split(text)]
            patterns.append((key, re.compile("(?:" + ".+?".join(parts) + r")\Z", re.S)))
    return tuple(patterns)


@functools.cache
def any_english(code: str) -> re.Pattern[str]:
    """One pattern that matches a text when any of `english_patterns(code)` does: a text
    is tried against all of them in one match instead of a loop over a thousand."""
    return re.compile("|".join(pattern.pattern for _, pattern in english_patterns(code)), re.S)


# Every text node of the body, and every title, aria-label and placeholder, trimmed.
WALK = """() => {
  const texts = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const parent = walker.currentNode.parentElement;
    if (parent && parent.closest("script, style, noscript")) continue;
    texts.push(walker.currentNode.textContent);
  }
  for (const el of document.querySelectorAll("[title], [aria-label], [placeholder]")) {
    for (const name of ["title", "aria-label", "placeholder"]) {
      if (el.hasAttribute(name)) texts.push(...el.getAttribute(name).split("\\n"));
    }
  }
  return texts.map((text) => text.trim()).filter(Boolean);
}"""


def untranslated(page: Page, code: str) -> list[str]:
    found = []
    for text in page.evaluate(WALK):
        if not any_english(code).match(text):
            continue
        for key, pattern in english_patterns(code):
            if pattern.match(text):
                found.append(f"{text!r} (en {key})")
                break
    return found


def path_of(row: Any, incident_id: int) -> str:
    return row.path.replace("{incident_id}", str(incident_id)).replace("{number}", "1")


@contextmanager
def context_in(browser: Any, locale: str) -> Iterator[Page]:
    context = browser.new_context(locale=locale, viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
        assert errors == [], errors
    finally:
        context.close()


def show(page: Page, site: Site, row: Any, code: str, incident_id: int) -> None:
    """Open `row` (signing in with Nairobi's manager, whom every page accepts; the
    responder console as Thika's responder, whose inbox holds Nairobi's request) and
    check it is wholly in `code`: the sign-in form first, then the page itself."""
    page.goto(site.base_url + path_of(row, incident_id))
    expect(page.locator("html")).to_have_attribute("lang", code)
    expect(page.locator("#language")).to_have_value(code)
    if row.signs_in:
        page.click("#advanced-sign-in summary")
        assert untranslated(page, code) == [], f"{row.path} sign-in in {code}"
        who = ("responder", "thika") if row.page_id == "respond" else ("manager", "nairobi")
        page.fill("#token", site.world.token(*who))
        page.press("#token", "Enter")
        expect(page.locator("#who .who-role")).not_to_be_empty()
    page.wait_for_load_state("networkidle")
    if row.page_id == "manage":
        # The folded sections too: people (with the sign-in provider and the password
        # change) and the tokens for machines, with their lists filled.
        for section in ("#people", "#tokens"):
            page.click(f"{section} > summary")
        expect(page.locator("#provider-status")).not_to_be_empty()
        expect(page.locator("#token-list .token").first).to_be_visible()
        page.wait_for_load_state("networkidle")
    left = untranslated(page, code)
    assert left == [], f"{row.path} in {code}: English left: {left}"


def test_every_page_in_german_and_swahili_from_the_browser_language(
    browser: Any, site: Site
) -> None:
    incident, request = site.power_cut("Grid down in Kibera", 3)
    # A claim waiting for acceptance and one on its way, so the consoles show their words.
    thika = site.world.token("responder", "thika")
    for key in ("languages-1", "languages-2"):
        site.api(
            "POST",
            f"/requests/{request['id']}/claims",
            thika,
            json={"quantity": 1},
            headers={"Idempotency-Key": key},
        )
    manager = site.world.token("manager", "nairobi")
    claims = site.api("GET", f"/requests/{request['id']}/claims", manager)["data"]
    site.api("POST", f"/claims/{claims[0]['id']}/status", manager, json={"status": "accepted"})
    # An offer from Thika, so the offers panels show a card with its moves; a token for
    # machines, so the manager console's token list has a row.
    ready = (datetime.now(UTC) + timedelta(hours=4)).isoformat()
    site.api(
        "POST",
        f"/incidents/{incident['id']}/offers",
        thika,
        json={"resource": request["resource"], "quantity": 1, "ready_at": ready},
        headers={"Idempotency-Key": "languages-offer"},
    )
    site.api("POST", "/tokens", manager, json={"role": "observer", "label": "dashboard"})
    for code in LANGUAGES:
        with context_in(browser, locale={"de": "de-DE", "sw": "sw-KE"}[code]) as page:
            for row in PAGES:
                show(page, site, row, code, incident["id"])


def test_the_switcher_turns_every_page_and_is_remembered(browser: Any, site: Site) -> None:
    incident, _ = site.power_cut("Substation fire", 2)
    for code in LANGUAGES:
        with context_in(browser, locale="en-US") as page:
            page.goto(site.base_url + "/")
            expect(page.locator("html")).to_have_attribute("lang", "en")
            expect(page.locator("#main h1")).to_have_text(catalogue("en")["index.heading"])
            page.select_option("#language", code)
            expect(page.locator("html")).to_have_attribute("lang", code)
            expect(page.locator("#main h1")).to_have_text(catalogue(code)["index.heading"])
            # Remembered: every page after it opens in the chosen language.
            for row in PAGES:
                show(page, site, row, code, incident["id"])
            page.select_option("#language", "en")
            expect(page.locator("html")).to_have_attribute("lang", "en")


def test_the_switchers_choice_reaches_the_pages_the_server_words(browser: Any, site: Site) -> None:
    refused = site.base_url + CALLBACK_PATH + "?error=access_denied"
    title = "#sign-in-refused h1"
    with context_in(browser, locale="en-US") as page:
        page.goto(refused)
        expect(page.locator("html")).to_have_attribute("lang", "en")
        page.goto(site.base_url + "/")
        page.select_option("#language", "sw")
        expect(page.locator("html")).to_have_attribute("lang", "sw")
        page.goto(refused)
        expect(page.locator("html")).to_have_attribute("lang", "sw")
        expect(page.locator(title)).to_have_text(
            catalogue("sw")["signin_result.provider_refused_title"]
        )
        # A choice the browser remembers without the cookie (made before it was written)
        # is told to the server by the next page of the site.
        page.context.clear_cookies()
        page.goto(refused)
        expect(page.locator("html")).to_have_attribute("lang", "en")
        page.goto(site.base_url + "/")
        expect(page.locator("html")).to_have_attribute("lang", "sw")
        page.goto(refused)
        expect(page.locator(title)).to_have_text(
            catalogue("sw")["signin_result.provider_refused_title"]
        )


# The error a page shows for a refusal: ApiError as api.js builds it from a status and
# the server's detail.
ERROR_OF = """async ([status, detail]) => {
  const { ApiError } = await import("/static/api.js");
  return new ApiError(status, detail).message;
}"""


def test_a_server_error_reads_as_its_status_translated_with_the_servers_detail(
    browser: Any, site: Site
) -> None:
    detail = "request 7 is cancelled"
    for code, locale in (("de", "de-DE"), ("sw", "sw-KE"), ("en", "en-US")):
        with context_in(browser, locale=locale) as page:
            page.goto(site.base_url + "/")
            expect(page.locator("html")).to_have_attribute("lang", code)
            shown = page.evaluate(ERROR_OF, [409, detail])
            expected = detail if code == "en" else f"{catalogue(code)['error.409']}: {detail}"
            assert shown == expected
            unknown = page.evaluate(ERROR_OF, [418, "short and stout"])
            other = catalogue(code)["error.other"].replace("{status}", "418")
            assert unknown == ("short and stout" if code == "en" else f"{other}: short and stout")
            unreachable = catalogue(code)["error.0"]
            assert page.evaluate(ERROR_OF, [0, unreachable]) == unreachable


def test_a_claim_of_more_than_is_left_is_refused_in_german_with_the_numbers(
    browser: Any, site: Site
) -> None:
    """The page sees 4 generators left and claims 3 while offline; meanwhile 2 are
    claimed, so the server refuses with `not_enough_remaining` (asked 3, remaining 2),
    and the page says so in German, with no English sentence."""
    _, request = site.power_cut("Umspannwerk ausgefallen", 4)
    card = f'#inbox li[data-request-id="{request["id"]}"]'
    thika = site.world.token("responder", "thika")
    with context_in(browser, locale="de-DE") as page:
        page.goto(site.base_url + "/respond")
        page.click("#advanced-sign-in summary")
        page.fill("#token", thika)
        page.press("#token", "Enter")
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        expect(page.locator(f"{card} input.qty")).to_be_enabled()
        page.fill(f"{card} input.qty", "3")
        page.context.set_offline(True)
        expect(page.locator("#conn")).not_to_have_attribute("data-state", "live")
        page.click(f"{card} form.claim-form button[type=submit]")
        expect(page.locator("#outbox")).to_be_visible()
        site.api(
            "POST",
            f"/requests/{request['id']}/claims",
            thika,
            json={"quantity": 2},
            headers={"Idempotency-Key": "meanwhile"},
        )
        page.context.set_offline(False)
        german = catalogue("de")["error.code.not_enough_remaining"]
        said = german.replace("{asked}", "3").replace("{remaining}", "2")
        notice = page.locator("#notices .notice.error", has_text=said)
        expect(notice).to_be_visible(timeout=15_000)
        text = notice.inner_text()
        assert "cannot claim" not in text and "left unclaimed" not in text, text
        english = catalogue("en")["error.code.not_enough_remaining"]
        assert english.split("{")[0].strip() not in text, text
        assert catalogue("de")["error.409"] not in text, text
        print(f"the German page said: {text!r}")
