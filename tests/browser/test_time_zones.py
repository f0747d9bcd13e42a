"""Every time on the pages carries its zone: a viewer in Berlin sees Nairobi's incident in
Berlin time with the zone named, and on hover the same moment in Nairobi's local time and
in UTC; an incident of a city without a zone shows only the viewer's time and UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from tests.browser.conftest import Site
from tests.browser.test_pages import signed_in

BERLIN, NAIROBI = ZoneInfo("Europe/Berlin"), ZoneInfo("Africa/Nairobi")
BERLIN_ZONE = re.compile(r"\b(CET|CEST|GMT\+1|GMT\+2)\b")


def _clock(iso: str, zone: ZoneInfo) -> str:
    return datetime.fromisoformat(iso).astimezone(zone).strftime("%H:%M:%S")


def test_times_show_the_viewers_zone_and_the_incidents_local_time_on_hover(
    browser: Any, site: Site
) -> None:
    world = site.world
    manager = world.token("manager", "nairobi")
    incident = site.api(
        "POST", "/incidents", manager, json={"incident_type": "flood", "title": "Nairobi flood"}
    )
    needed_by = (datetime.now(UTC) + timedelta(hours=5)).isoformat()
    request = site.api(
        "POST",
        f"/incidents/{incident['id']}/requests",
        manager,
        json={"resource": "high-capacity-pump", "quantity": 2, "needed_by": needed_by},
    )
    munich = site.api(
        "POST",
        "/incidents",
        world.token("manager", "munich"),
        json={"incident_type": "flood", "title": "Isar flood"},
    )
    events = site.api("GET", f"/incidents/{incident['id']}/events", manager)["data"]
    declared = events[0]["occurred_at"]
    observer = world.token("observer", "nairobi")

    with signed_in(
        browser, site, f"/board#incident={incident['id']}", observer, timezone_id="Europe/Berlin"
    ) as board:
        first = board.locator('#feed li[data-seq="1"] time')
        expect(first).to_have_attribute("datetime", declared)
        shown = first.inner_text()
        assert shown.startswith(_clock(declared, BERLIN)), shown
        assert BERLIN_ZONE.search(shown), shown
        title = first.get_attribute("title") or ""
        assert f"{_clock(declared, BERLIN)}" in title and "(your time)" in title, title
        assert f"{_clock(declared, NAIROBI)}" in title, title
        assert "in Nairobi (local time)" in title, title
        assert datetime.fromisoformat(declared).strftime("%Y-%m-%dT%H:%M:%S") in title, title

        row = board.locator(f'#request-list li[data-request-id="{request["id"]}"]')
        needed = row.locator(f'time[datetime="{request["needed_by"]}"]')
        expect(needed).to_contain_text("in ")
        needed_title = needed.get_attribute("title") or ""
        assert _clock(request["needed_by"], NAIROBI) in needed_title, needed_title
        assert "in Nairobi (local time)" in needed_title, needed_title

    with signed_in(
        browser,
        site,
        f"/board#incident={munich['id']}",
        world.token("observer", "munich"),
        timezone_id="Africa/Nairobi",
    ) as board:
        first = board.locator('#feed li[data-seq="1"] time')
        expect(first).to_be_visible()
        title = first.get_attribute("title") or ""
        # Munich has no zone set: the viewer's time (Nairobi here) and UTC, no local line.
        assert "(your time)" in title and "local time" not in title, title
