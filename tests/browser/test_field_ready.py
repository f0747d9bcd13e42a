"""Pages ready for the field, in real Chromium: an answered information request shows as
answered with its answer (as text) everywhere; the map tells units per resource; the board
opens a closed incident from its address and lists the recently closed; the board prints
light, without controls, with its progress bars; a manager edits a request on /manage and
the board follows live."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.conftest import Site
from tests.browser.test_pages import LIVE_WITHIN_MS, signed_in

# Markup in an answer must arrive as the characters typed, never as elements.
HOSTILE_ANSWER = 'Bridges <b>closed</b> <img src=x onerror="window.__injected=1"> & roads open'


def _declare(site: Site, title: str, city: str = "nairobi", **extra: Any) -> dict[str, Any]:
    manager = site.world.token("manager", city)
    body = {"incident_type": "flood", "title": title, **extra}
    incident: dict[str, Any] = site.api("POST", "/incidents", manager, json=body)
    return incident


def _raise(site: Site, incident: dict[str, Any], resource: str, quantity: int, **extra: Any) -> Any:
    manager = site.world.token("manager", "nairobi")
    body = {"resource": resource, "quantity": quantity, **extra}
    return site.api("POST", f"/incidents/{incident['id']}/requests", manager, json=body)


def _claim(site: Site, request: dict[str, Any], quantity: int, key: str) -> Any:
    token = site.world.token("responder", "thika")
    return site.api(
        "POST",
        f"/requests/{request['id']}/claims",
        token,
        json={"quantity": quantity},
        headers={"Idempotency-Key": key},
    )


def _move(site: Site, claim: dict[str, Any], token: str, **body: Any) -> None:
    site.api("POST", f"/claims/{claim['id']}/status", token, json=body)


def test_an_answered_information_request_shows_its_answer_as_text_everywhere_live(
    browser: Any, site: Site
) -> None:
    world = site.world
    manager, responder = world.token("manager", "nairobi"), world.token("responder", "thika")
    incident = _declare(site, "Flooded roads around Nairobi")
    briefing = _raise(site, incident, "hydrological-forecast", 1, priority="high")
    at = f"#incident={incident['id']}"
    row = f'li[data-request-id="{briefing["id"]}"]'
    with (
        signed_in(browser, site, f"/board{at}", world.token("observer", "nairobi")) as board,
        signed_in(browser, site, f"/manage{at}", manager) as manage,
        signed_in(browser, site, "/respond", responder) as respond,
    ):
        expect(board.locator(f"#request-list {row}")).to_be_visible()
        claim = _claim(site, briefing, 1, "briefing")
        _move(site, claim, manager, status="accepted")
        _move(site, claim, responder, status="released", answer=HOSTILE_ANSWER)

        board_row = board.locator(f"#request-list {row}")
        expect(board_row.locator(".req-title .chip")).to_have_text(
            "Answered", timeout=LIVE_WITHIN_MS
        )
        expect(board_row.locator(".progress-text")).to_have_text("1/1 1 answered")
        expect(board_row.locator(".answers .answer-text")).to_have_text(HOSTILE_ANSWER)
        expect(board_row.locator(".answers figcaption")).to_contain_text("Thika")
        expect(board.locator("#feed")).to_contain_text(
            f"Thika answered Hydrological forecast (#{briefing['id']})"
        )
        expect(board.locator("#feed")).to_contain_text(
            f"Hydrological forecast (#{briefing['id']}) answered"
        )

        manage_row = manage.locator(f"#incident-detail {row}")
        expect(manage_row.locator(".answers .answer-text")).to_have_text(
            HOSTILE_ANSWER, timeout=LIVE_WITHIN_MS
        )
        status_cell = manage_row.locator(f'tr[data-claim-id="{claim["id"]}"] td').nth(2)
        expect(status_cell).to_have_text("Answered")
        expect(manage_row.locator(".req-title .chip")).to_have_text("Answered")

        card = respond.locator(f'#done-claims li[data-claim-id="{claim["id"]}"]')
        expect(card.locator(".chip")).to_have_text("Answered", timeout=LIVE_WITHIN_MS)
        expect(card.locator(".answer")).to_contain_text(HOSTILE_ANSWER)

        for page in (board, manage, respond):
            assert page.locator(".answers img, .answer img, .answer b").count() == 0
            assert page.evaluate("window.__injected") is None


def test_the_map_names_the_units_claimed_per_resource_and_never_adds_them_up(
    browser: Any, site: Site
) -> None:
    world = site.world
    incident = _declare(site, "Shelter for Mathare")
    water = _raise(site, incident, "bottled-water", 20)
    cots = _raise(site, incident, "cots", 200)
    _claim(site, water, 15, "water-15")
    _claim(site, cots, 150, "cots-150")
    thika = world.city_ids["thika"]
    with signed_in(
        browser, site, f"/board#incident={incident['id']}", world.token("observer", "nairobi")
    ) as board:
        tooltip = board.locator(f'#map g.city.claimer[data-city-id="{thika}"] title')
        expect(tooltip).to_have_text("Thika: claimed 15 pallets of bottled water, 150 cots")
        # Live: a third resource is a third entry, not a bigger sum.
        team = _raise(site, incident, "swift-water-rescue-team", 2)
        _claim(site, team, 1, "team-1")
        expect(tooltip).to_have_text(
            "Thika: claimed 15 pallets of bottled water, 150 cots, "
            "1 team of swift-water rescue team",
            timeout=LIVE_WITHIN_MS,
        )


def test_the_board_opens_exactly_the_incident_in_its_address_closed_or_not(
    browser: Any, site: Site
) -> None:
    world = site.world
    manager = world.token("manager", "nairobi")
    closed = _declare(site, "Kibera flood, over")
    site.api("POST", f"/incidents/{closed['id']}/close", manager)
    _declare(site, "Still active in Nairobi")  # the newest active one: never shown instead
    berlin = _declare(site, "Spree flood", city="berlin")
    observer = world.token("observer", "nairobi")

    with signed_in(browser, site, f"/board#incident={closed['id']}", observer) as board:
        expect(board.locator("#incident-title")).to_have_text("Kibera flood, over")
        expect(board.locator("#incident-head .badge.closed")).to_have_text("Closed")
        expect(board.locator("#feed li")).to_have_count(2)  # declared, closed
        item = board.locator(f'#closed-list li[data-incident-id="{closed["id"]}"]')
        expect(item).to_contain_text("Kibera flood, over")
        expect(item.locator("button")).to_have_attribute("aria-pressed", "true")
        expect(
            board.locator(f'#incident-list li[data-incident-id="{closed["id"]}"]')
        ).to_have_count(0)

        # Not there, or not visible to Nairobi: said plainly, with nothing else shown.
        for missing in (2_147_480_000, berlin["id"]):
            board.evaluate(f"location.hash = 'incident={missing}'")
            expect(board.locator("#incident-missing")).to_have_text(
                f"Incident #{missing} cannot be shown"
            )
            expect(board.locator("#incident-title")).to_have_count(0)
            expect(board.locator("#request-list li")).to_have_count(0)

        # And back to the closed incident by its list item.
        item.locator("button").click()
        expect(board.locator("#incident-title")).to_have_text("Kibera flood, over")


def test_the_board_lists_the_recently_closed_a_page_at_a_time(browser: Any, site: Site) -> None:
    world = site.world
    manager = world.token("manager", "nairobi")
    for n in range(11):
        incident = _declare(site, f"Closed drill {n}", exercise=True)
        site.api("POST", f"/incidents/{incident['id']}/close", manager)
    with signed_in(browser, site, "/board", world.token("observer", "nairobi")) as board:
        closed = board.locator("#closed-list li")
        expect(closed).to_have_count(10)
        expect(closed.first).to_contain_text("Closed drill 10")
        board.click("#closed-more")
        expect(closed).not_to_have_count(10)
        assert closed.count() > 10
        closed.filter(has_text="Closed drill 0").locator("button").click()
        expect(board.locator("#incident-title")).to_have_text("Closed drill 0")
        assert board.evaluate("location.hash").startswith("#incident=")


def _computed(page: Page, selector: str, prop: str) -> str:
    value: str = page.eval_on_selector(
        selector, f"el => getComputedStyle(el).getPropertyValue('{prop}')"
    )
    return value


def test_the_board_prints_light_without_controls_and_with_its_progress_bars(
    browser: Any, site: Site
) -> None:
    world = site.world
    incident = _declare(site, "Printed flood report")
    pumps = _raise(site, incident, "high-capacity-pump", 4)
    _claim(site, pumps, 3, "print-pumps")
    with signed_in(
        browser, site, f"/board#incident={incident['id']}", world.token("observer", "nairobi")
    ) as board:
        row = f'#request-list li[data-request-id="{pumps["id"]}"]'
        expect(board.locator(f"{row} .seg-claimed")).to_be_visible()
        # On screen: the dark theme, navigation and buttons (the check can fail).
        assert _computed(board, "body", "background-color") != "rgb(255, 255, 255)"
        assert _computed(board, ".topbar nav", "display") != "none"

        board.emulate_media(media="print")
        assert _computed(board, "body", "background-color") == "rgb(255, 255, 255)"
        assert _computed(board, "body", "color") == "rgb(0, 0, 0)"
        transparent = ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)")
        assert _computed(board, ".panel", "background-color") in transparent
        for hidden in (".topbar nav", ".map-tabs", "#closed-more", ".map-tabs button"):
            assert _computed(board, hidden, "display") == "none", hidden
        # No control prints; the incident lists print as lines of text, not as buttons.
        shown_buttons = board.eval_on_selector_all(
            "button:not(.incident-item)",
            "all => all.filter(b => getComputedStyle(b).display !== 'none').length",
        )
        assert shown_buttons == 0
        item = f'#incident-list li[data-incident-id="{incident["id"]}"] .incident-item'
        assert _computed(board, item, "display") == "block"
        assert _computed(board, item, "border-top-style") == "none"
        expect(board.locator(item)).to_contain_text("Printed flood report")
        assert _computed(board, ".topbar nav", "display") == "none"
        # The bar does not depend on background colours: its segment is a border.
        segment = f"{row} .seg-claimed"
        assert _computed(board, segment, "border-top-width") == "12px"
        assert _computed(board, segment, "border-top-style") != "none"
        assert float(board.eval_on_selector(segment, "el => el.getBoundingClientRect().width")) > 0
        assert _computed(board, f"{row} .bar", "print-color-adjust") == "exact"
        expect(board.locator(f"{row} .progress-text")).to_have_text("3/4 3 claimed")
        assert _computed(board, f"{row} .progress-text", "display") != "none"

        pdf = board.pdf(format="A4")
        assert pdf.startswith(b"%PDF") and len(pdf) > 5_000
        board.emulate_media(media="screen")

    # The incident as its manager prints it: the same, without the console's forms.
    manager = world.token("manager", "nairobi")
    with signed_in(browser, site, f"/manage#incident={incident['id']}", manager) as manage:
        row = f'#incident-detail li[data-request-id="{pumps["id"]}"]'
        expect(manage.locator(f"{row} .seg-claimed")).to_be_visible()
        manage.emulate_media(media="print")
        assert _computed(manage, "body", "background-color") == "rgb(255, 255, 255)"
        for hidden in ("#close-incident", "#edit-incident", f"{row} details.request-edit"):
            assert _computed(manage, hidden, "display") == "none", hidden
        assert _computed(manage, f"{row} .seg-claimed", "border-top-width") == "12px"
        assert manage.pdf(format="A4").startswith(b"%PDF")


def test_a_manager_edits_a_request_and_the_board_follows_live(browser: Any, site: Site) -> None:
    world = site.world
    manager = world.token("manager", "nairobi")
    incident = _declare(site, "Grid down in Westlands")
    generators = _raise(site, incident, "generator-100kw", 5, priority="high")
    _claim(site, generators, 2, "gens-2")
    at = f"#incident={incident['id']}"
    row = f'li[data-request-id="{generators["id"]}"]'
    with (
        signed_in(browser, site, f"/board{at}", world.token("observer", "thika")) as board,
        signed_in(browser, site, f"/manage{at}", manager) as manage,
    ):
        card = manage.locator(f"#incident-detail {row}")
        card.locator("details.request-edit summary").click()
        quantity = card.locator(".edit-quantity")
        expect(quantity).to_have_value("5")
        expect(card.locator(".edit-floor")).to_contain_text("2 units already claimed")
        error = card.locator(".edit-error")

        card.locator(".edit-save").click()
        expect(error).to_have_text(
            "Nothing to save: change the units, priority, needed by or report to first."
        )
        # Below what is claimed: the browser would refuse it, so the check is the server's.
        quantity.evaluate("input => input.removeAttribute('min')")
        quantity.fill("1")
        card.locator(".edit-save").click()
        expect(error).to_have_text(
            "Not saved: the quantity cannot go below what is already claimed: "
            "2 units are claimed, 1 asked"
        )

        # A day from now, as the datetime-local input takes it (the browser's own zone).
        tomorrow = manage.evaluate(
            """() => {
                const d = new Date(Date.now() + 86_400_000);
                const p = (n) => String(n).padStart(2, "0");
                const day = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
                return `${day}T${p(d.getHours())}:${p(d.getMinutes())}`;
            }"""
        )
        quantity.fill("8")
        card.locator(".edit-priority").select_option("critical")
        card.locator(".edit-needed-by").fill(tomorrow)
        card.locator(".edit-report-to").fill("Westlands substation, gate 4")
        card.locator(".edit-save").click()

        board_row = board.locator(f"#request-list {row}")
        expect(board_row.locator(".progress-text")).to_contain_text("2/8", timeout=LIVE_WITHIN_MS)
        expect(board_row.locator(".badge.priority-critical")).to_be_visible()
        expect(board_row.locator(".timing")).to_contain_text("needed in")
        expect(board.locator("#feed")).to_contain_text(
            f"Nairobi edited Generator 100 kW (#{generators['id']}): units 5 → 8, "
            "priority high → critical, needed by"
        )
        expect(card.locator(".report-to")).to_have_text("Report to Westlands substation, gate 4")
        expect(card.locator("details.request-edit")).not_to_have_attribute("open", "")

    stored = site.api("GET", f"/requests/{generators['id']}", manager)
    assert (stored["quantity"], stored["priority"], stored["report_to"]) == (
        8,
        "critical",
        "Westlands substation, gate 4",
    )
    assert stored["needed_by"] is not None
    events = site.api("GET", f"/incidents/{incident['id']}/events?after=0", manager)["data"]
    assert [e["type"] for e in events][-1] == "request.updated"
    assert list(events[-1]["data"]["changes"]) == ["quantity", "priority", "needed_by", "report_to"]
