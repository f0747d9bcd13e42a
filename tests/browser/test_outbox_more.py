"""The outbox beyond claims, in real Chromium against a real aidmesh process.

Passing on a request and writing a note on /respond, editing the incident and ticking its
checklist on /manage: each made while the service is down is shown as waiting where it
was made, sent once when the service is back (one event each, in the events table), and
its waiting note goes away. An action the service refuses when it finally arrives says
so, with the service's reason.
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.conftest import Site
from tests.browser.test_outbox import (
    NOTICES,
    card,
    claim,
    events_after,
    never_failed,
    notices,
    stage,
)
from tests.browser.test_pages import signed_in


def recorded(site: Site, incident_id: int, after: int) -> list[str]:
    """The types of the incident's events after seq `after`, in order."""
    return [e["type"] for e in events_after(site, incident_id, after)]


def last_seq(site: Site, incident_id: int) -> int:
    manager = site.world.token("manager", "nairobi")
    seq: int = site.api("GET", f"/incidents/{incident_id}", manager)["last_seq"]
    return seq


def go_offline(page: Page) -> None:
    page.context.set_offline(True)
    expect(page.locator("#conn")).not_to_have_attribute("data-state", "live")


def test_a_pass_and_a_note_made_while_the_service_is_down_are_sent_once(
    browser: Any, site: Site
) -> None:
    incident, (cots, water) = stage(
        site, "Mathare valley flash flood", ("cots", 30), ("water-tender", 2)
    )
    thika = site.world.token("responder", "thika")
    with signed_in(browser, site, "/respond", thika, init_script=NOTICES) as respond:
        thread = respond.locator(f"{card(water)} details.notes")
        thread.locator("summary").click()  # read while the service is up
        expect(thread.locator(".empty-notes")).to_be_visible()
        before = last_seq(site, incident["id"])
        site.server.stop()
        expect(respond.locator("#conn")).to_have_attribute("data-state", "reconnecting")

        respond.fill(f"{card(cots)} .pass-reason", "Our cots went to Kibera")
        respond.click(f"#pass-{cots}")
        thread.get_by_label("New note").fill("Our tender is two hours out")
        thread.get_by_role("button", name="Add note").click()
        expect(respond.locator("#outbox")).to_contain_text("2 actions waiting to be sent")
        expect(respond.locator("#outbox")).to_contain_text(f"pass on cots (request #{cots})")
        # Each waits where it was made: the pass's button and reason, the note in its thread.
        expect(respond.locator(f"#pass-{cots}")).to_be_disabled()
        expect(respond.locator(f"#pass-{cots}")).to_have_text("Waiting to be sent")
        expect(respond.locator(f"{card(cots)} .pass-reason")).to_have_value(
            "Our cots went to Kibera"
        )
        expect(respond.locator(f"{card(cots)} .pass-queued")).to_be_visible()
        waiting = thread.locator("li.note.waiting")
        expect(waiting).to_contain_text("Waiting to be sent")
        expect(waiting.locator(".note-body")).to_have_text("Our tender is two hours out")
        expect(thread.get_by_label("New note")).to_have_value("")
        respond.wait_for_timeout(2_000)  # a retry or two while it is down
        never_failed(respond)

        site.server.start()
        expect(respond.locator("#outbox")).to_be_hidden(timeout=15_000)
        expect(respond.locator(f"{card(cots)} .passed")).to_have_text(
            "Your city passed on this request."
        )
        expect(thread.locator("li.note.waiting")).to_have_count(0)
        expect(thread.locator(".note-body")).to_have_text(["Our tender is two hours out"])
        respond.wait_for_timeout(1_500)  # anything else in flight has landed by now
        never_failed(respond)
        events = events_after(site, incident["id"], before)
        made = [(e["type"], e["data"]["request"]["id"]) for e in events if "pass" in e["data"]]
        notes = [e["data"]["note"] for e in events if e["type"] == "note.added"]
        print(f"pass and note sent after the restart: {[e['type'] for e in events]}")
        assert made == [("request.passed", cots)]
        assert events[0]["data"]["pass"]["reason"] == "Our cots went to Kibera"
        assert [(n["request_id"], n["body"]) for n in notes] == [
            (water, "Our tender is two hours out")
        ]
        # In the order made (the pass moved the request outward too: Thika was its ring).
        sent = [e["type"] for e in events if e["type"] in ("request.passed", "note.added")]
        assert sent == ["request.passed", "note.added"]


def test_an_incident_edit_and_a_tick_made_while_the_service_is_down_are_sent_once(
    browser: Any, site: Site
) -> None:
    manager = site.world.token("manager", "nairobi")
    incident = site.flood("Nyando river overflow", playbook="flood", playbook_requests=[])
    item = incident["checklists"][0]["items"][2]["text"]
    with signed_in(
        browser, site, f"/manage#incident={incident['id']}", manager, init_script=NOTICES
    ) as manage:
        expect(manage.locator("#incident-title")).to_have_text("Nyando river overflow")
        before = last_seq(site, incident["id"])
        site.server.stop()
        expect(manage.locator("#conn")).to_have_attribute("data-state", "reconnecting")

        manage.click("#edit-incident summary")
        # The box fills its fields from the incident on its toggle event, a task after the
        # click: typing before it runs would be overwritten.
        manage.evaluate("new Promise((done) => setTimeout(done))")
        manage.fill("#edit-title", "Nyando and Nzoia rivers overflow")
        manage.select_option("#edit-severity", "extreme")
        manage.click("#edit-save")
        expect(manage.locator("#edit-queued")).to_contain_text("Waiting to be sent")
        checks = manage.locator("#incident-detail #checklists")
        checks.get_by_label(item).check()
        expect(manage.locator("#outbox")).to_contain_text("2 actions waiting to be sent")
        box = checks.get_by_label(item)
        expect(box).to_be_checked()
        expect(box).to_be_disabled()
        row = checks.locator('section[data-checklist="0"] li[data-item="2"]')
        expect(row.locator(".tick-waiting")).to_have_text("waiting to be sent")
        # A redraw (the box closed and opened again) still says the edit waits.
        manage.click("#edit-incident summary")
        manage.click("#edit-incident summary")
        expect(manage.locator("#edit-queued")).to_contain_text("Waiting to be sent")
        manage.wait_for_timeout(2_000)
        never_failed(manage)

        site.server.start()
        expect(manage.locator("#outbox")).to_be_hidden(timeout=15_000)
        expect(manage.locator("#edit-queued")).to_have_text("")
        expect(manage.locator("#incident-title")).to_have_text("Nyando and Nzoia rivers overflow")
        expect(row.locator(".tick-waiting")).to_have_count(0)
        expect(checks.get_by_label(item)).to_be_enabled()
        expect(checks.get_by_label(item)).to_be_checked()
        manage.wait_for_timeout(1_500)
        never_failed(manage)
        events = events_after(site, incident["id"], before)
        print(f"edit and tick sent after the restart: {[e['type'] for e in events]}")
        assert [e["type"] for e in events] == ["incident.updated", "checklist.ticked"]
        assert set(events[0]["data"]["changes"]) == {"title", "severity"}
        assert (events[1]["data"]["checklist"], events[1]["data"]["item"]) == (0, 2)
        state = site.api("GET", f"/incidents/{incident['id']}", manager)
        assert (state["title"], state["severity"]) == (
            "Nyando and Nzoia rivers overflow",
            "extreme",
        )
        assert state["checklists"][0]["items"][2]["done"] is True


def test_a_queued_pass_refused_on_arrival_says_why(browser: Any, site: Site) -> None:
    incident, (pumps,) = stage(site, "Kisumu lakeshore surge", ("high-capacity-pump", 2))
    thika = site.world.token("responder", "thika")
    with signed_in(browser, site, "/respond", thika, init_script=NOTICES) as respond:
        expect(respond.locator(f"#pass-{pumps}")).to_be_visible()
        go_offline(respond)
        respond.click(f"#pass-{pumps}")
        expect(respond.locator(f"#pass-{pumps}")).to_have_text("Waiting to be sent")
        # Meanwhile Thika's own colleague claims every pump: nothing is left to pass on.
        claim(site, pumps, 2, "kisumu-pumps")
        before = last_seq(site, incident["id"])
        respond.context.set_offline(False)
        expect(respond.locator("#notices")).to_contain_text(
            f"Not done: pass on high capacity pump (request #{pumps})", timeout=15_000
        )
        expect(respond.locator("#notices")).to_contain_text("no longer open")
        expect(respond.locator("#outbox")).to_be_hidden()
        print(f"a refused pass said: {notices(respond)}")
        assert "request.passed" not in recorded(site, incident["id"], before)


def test_a_queued_close_of_an_incident_already_closed_says_why(browser: Any, site: Site) -> None:
    incident, _ = stage(site, "Kano plains waterlogging", ("cots", 5))
    manager = site.world.token("manager", "nairobi")
    at = f"/manage#incident={incident['id']}"
    with signed_in(browser, site, at, manager, init_script=NOTICES) as manage:
        expect(manage.locator("#close-incident")).to_be_visible()
        go_offline(manage)
        manage.click("#close-incident")
        manage.locator("dialog").get_by_role("button", name="Close incident").click()
        expect(manage.locator("#close-waiting")).to_contain_text(
            "Waiting to be sent: close incident “Kano plains waterlogging”"
        )
        expect(manage.locator("#close-incident")).to_have_count(0)
        # Another manager of the city closes it first.
        site.api("POST", f"/incidents/{incident['id']}/close", manager)
        manage.context.set_offline(False)
        expect(manage.locator("#notices")).to_contain_text(
            "Not done: close incident “Kano plains waterlogging”", timeout=15_000
        )
        expect(manage.locator("#notices")).to_contain_text("cannot go from 'closed' to 'closed'")
        expect(manage.locator("#close-waiting")).to_have_count(0)
        expect(manage.locator("#outbox")).to_be_hidden()
        closes = [
            e for e in events_after(site, incident["id"], 0) if e["type"] == "incident.closed"
        ]
        print(f"a refused close said: {notices(manage)}")
        assert len(closes) == 1


# An action refused (409) as already done, sent by the outbox once (`attempts` 1) or again
# after an attempt whose answer was lost (`attempts` 2).
SENT_AGAIN = """
async ({ token, sender, body, attempts }) => {
  const { makeApi } = await import("/static/api.js");
  const outbox = await import("/static/outbox.js");
  const api = makeApi(() => token);
  try {
    const answer = await outbox[sender]({ live: null, api }, { key: "again", body, attempts });
    return `answered ${answer.status ?? answer.city_id}`;
  } catch (error) {
    return `refused ${error.status}`;
  }
}
"""


def test_a_pass_or_close_found_done_is_answered_only_when_sent_before(
    browser: Any, site: Site
) -> None:
    incident, (cots,) = stage(site, "Ahero rice fields flooded", ("cots", 10))
    thika = site.world.token("responder", "thika")
    manager = site.world.token("manager", "nairobi")
    thika_id = site.world.city_ids["thika"]
    site.api("POST", f"/requests/{cots}/passes", thika, json={"reason": ""})
    site.api("POST", f"/incidents/{incident['id']}/close", manager)
    with signed_in(browser, site, "/respond", thika) as respond:
        passing = {"request_id": cots, "reason": "", "city_id": thika_id}
        tries = {
            (sender, attempts): respond.evaluate(
                SENT_AGAIN,
                {
                    "token": thika if sender == "sendPass" else manager,
                    "sender": sender,
                    "body": passing if sender == "sendPass" else {"incident_id": incident["id"]},
                    "attempts": attempts,
                },
            )
            for sender in ("sendPass", "sendClose")
            for attempts in (1, 2)
        }
    print(f"already done, sent once or again: {tries}")
    # Sent before, the attempt that landed may have been its own: what is on record answers.
    # Sent once, nothing of its own can have landed: someone else did it, a refusal.
    assert tries == {
        ("sendPass", 1): "refused 409",
        ("sendPass", 2): f"answered {thika_id}",
        ("sendClose", 1): "refused 409",
        ("sendClose", 2): "answered closed",
    }
