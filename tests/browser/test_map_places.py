"""The map's places and tiles: the incident's own place and the requests' staging points
are drawn with their labels, which never overlap; the manager sets them by clicking a map
or typing coordinates; and where the deployment names a tile server, its tiles are drawn
under the geography, lined up with it, and the pages may load images from it alone."""

from __future__ import annotations

import math
import re
import struct
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from service.settings import Settings
from tests.browser.conftest import Site, running_site
from tests.browser.test_pages import signed_in
from tests.support import CITIES

NAIROBI = CITIES["nairobi"][2], CITIES["nairobi"][3]


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A plain PNG of one colour, written by hand (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


TILE = _png(256, 256, (40, 70, 110))


class TileServer:
    """A tile server on loopback: every /tiles/{z}/{x}/{y}.png is the same PNG; it
    records the paths asked for."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        paths = self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                paths.append(self.path)
                if not self.path.startswith("/tiles/") or not self.path.endswith(".png"):
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(TILE)))
                self.end_headers()
                self.wfile.write(TILE)

            def log_message(self, *args: Any) -> None:
                """Quiet: the test reads the paths asked for, not a line per request."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def tiles() -> Iterator[TileServer]:
    with TileServer() as server:
        yield server


@pytest.fixture(scope="module")
def tiled_site(tmp_path_factory: pytest.TempPathFactory, tiles: TileServer) -> Iterator[Site]:
    """aidmesh with AIDMESH_MAP_TILE_URL naming the loopback tile server."""
    with running_site(
        tmp_path_factory.mktemp("tiled"),
        {
            "AIDMESH_MAP_TILE_URL": tiles.origin + "/tiles/{z}/{x}/{y}.png",
            "AIDMESH_MAP_TILE_ATTRIBUTION": "© Test tiles",
        },
    ) as started:
        yield started


def _boxes(page: Page, selector: str) -> list[dict[str, float]]:
    boxes: list[dict[str, float]] = page.eval_on_selector_all(
        selector,
        """els => els.map(e => { const r = e.getBoundingClientRect();
            return { x: r.x, y: r.y, w: r.width, h: r.height, text: e.textContent }; })""",
    )
    return boxes


def _overlapping(boxes: list[dict[str, float]]) -> list[tuple[Any, Any]]:
    return [
        (a["text"], b["text"])
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    ]


def _incident_with_staging_points(site: Site, title: str) -> dict[str, Any]:
    """Nairobi's incident away from the city centre, with staging points: three crowded
    together (their labels cannot all fit) and one apart."""
    manager = site.world.token("manager", "nairobi")
    incident = site.api(
        "POST",
        "/incidents",
        manager,
        json={"incident_type": "flood", "title": title, "lat": -1.45, "lon": 36.95},
    )
    points = [
        ("Gate A, Uhuru Park", -1.2900, 36.8200),
        ("Gate B, Uhuru Park", -1.2910, 36.8215),
        ("Gate C, Uhuru Park", -1.2920, 36.8190),
        ("Kitengela depot", -1.4700, 36.9600),
    ]
    for name, lat, lon in points:
        site.api(
            "POST",
            f"/incidents/{incident['id']}/requests",
            manager,
            json={
                "resource": "high-capacity-pump",
                "quantity": 2,
                "report_to": name,
                "report_lat": lat,
                "report_lon": lon,
            },
        )
    return dict(incident)


def test_the_board_marks_the_incident_and_its_staging_points_and_labels_never_overlap(
    browser: Any, site: Site
) -> None:
    incident = _incident_with_staging_points(site, "Athi flood with staging points")
    observer = site.world.token("observer", "nairobi")
    with signed_in(browser, site, f"/board#incident={incident['id']}", observer) as board:
        expect(board.locator("#map svg g.staging")).to_have_count(4)
        expect(board.locator("#map svg g.incident-mark")).to_have_count(1)
        titles = board.locator("#map svg g.staging title").all_text_contents()
        depot = next(t for t in titles if t.startswith("Report to Kitengela depot"))
        assert "1.4700° S, 36.9600° E" in depot and "2 " in depot, depot
        labels = board.locator("#map svg text.label")
        expect(labels.filter(has_text="Kitengela depot")).to_have_count(1)
        expect(labels.filter(has_text="Athi flood")).to_have_count(1)
        texts = labels.all_text_contents()
        # The three gates sit within 300 m of each other and of Nairobi: not every label fits.
        assert sum(t.startswith("Gate") for t in texts) < 3, texts
        boxes = _boxes(board, "#map svg text.label")
        assert len(boxes) >= 5, texts
        assert _overlapping(boxes) == []
        # Close in on the incident: its depot nearby is labelled, the gates 23 km off are not.
        board.locator('#map [data-view="site"]').click()
        expect(board.locator("#map svg g.staging")).to_have_count(1)
        expect(labels.filter(has_text="Kitengela depot")).to_have_count(1)
        assert _overlapping(_boxes(board, "#map svg text.label")) == []
        board.locator('#map [data-view="network"]').click()
        expect(board.locator("#map svg g.city.origin")).to_have_count(1)
        boxes = _boxes(board, "#map svg text.label")
        assert boxes and _overlapping(boxes) == []
        # No tile server configured: no tiles, and the policy allows no other image origin.
        assert board.locator("#map svg image.tile").count() == 0
    policy = httpx.get(f"{site.base_url}/board").headers["content-security-policy"]
    assert "img-src 'self' data:;" in policy
    # A responder reads where to go, coordinates and all.
    responder = site.world.token("responder", "thika")
    with signed_in(browser, site, "/respond", responder) as respond:
        expect(respond.locator("#inbox .report-to", has_text="Kitengela depot")).to_have_text(
            "Report to Kitengela depot (1.4700° S, 36.9600° E)"
        )


def _size(picker: Any) -> tuple[float, float]:
    """A map picker's size on screen. The picker may be drawn again meanwhile (the page
    settling), so it is read from whichever element is there when asked, as a click
    finds it again too (a bounding box read from a replaced element is None)."""
    width, height = picker.evaluate(
        "el => { const r = el.getBoundingClientRect(); return [r.width, r.height]; }"
    )
    assert width > 0 and height > 0
    return float(width), float(height)


def test_the_manager_places_the_incident_and_a_staging_point_by_map_or_by_typing(
    browser: Any, site: Site
) -> None:
    manager = site.world.token("manager", "nairobi")
    with signed_in(browser, site, "/manage", manager) as manage:
        if manage.locator("#declare").get_attribute("open") is None:
            manage.click("#declare summary")
        manage.select_option("#declare-playbook", "flood")
        expect(manage.locator("#playbook-preview")).to_contain_text("It raises")
        manage.fill("#declare-title", "Placed by clicking")
        picker = manage.locator("#declare-map svg.picker")
        expect(picker).to_be_visible()
        width, height = _size(picker)
        # Right of and below the centre (Nairobi): east and south of it.
        picker.click(position={"x": width * 0.75, "y": height * 0.7})
        expect(manage.locator("#declare-map svg .chosen")).to_have_count(1)
        lat = float(manage.input_value("#declare-lat"))
        lon = float(manage.input_value("#declare-lon"))
        assert lat < NAIROBI[0] and lon > NAIROBI[1], (lat, lon)
        assert abs(lat - NAIROBI[0]) < 0.5 and abs(lon - NAIROBI[1]) < 0.6
        manage.click("#declare-form button[type=submit]")
        expect(manage.locator("#incident-title")).to_have_text("Placed by clicking")
        incidents = site.api("GET", "/incidents?status=active&limit=100", manager)["data"]
        incident = next(i for i in incidents if i["title"] == "Placed by clicking")
        assert (incident["lat"], incident["lon"]) == (lat, lon)

        # A staging point typed in: the mark moves to it before the request is raised.
        manage.click("#incident-detail details.raise summary")
        manage.select_option("#raise-resource", "high-capacity-pump")
        manage.fill("#raise-quantity", "3")
        manage.fill("#raise-report-to", "Nyayo stadium gate 14")
        manage.fill("#raise-report-lat", "-1.3045")
        manage.fill("#raise-report-lon", "36.8253")
        manage.press("#raise-report-lon", "Tab")
        expect(manage.locator("#raise-report-map svg .chosen")).to_have_count(1)
        manage.click("#raise-form button[type=submit]")
        expect(manage.locator("#notices")).to_contain_text("Raised 3 units")
        requests = site.api("GET", f"/incidents/{incident['id']}", manager)["requests"]
        raised = next(r for r in requests if r["report_to"] == "Nyayo stadium gate 14")
        assert (raised["report_lat"], raised["report_lon"]) == (-1.3045, 36.8253)

        # Edited: the card reads the place; moved by a click on the edit form's map, then
        # cleared, which removes it.
        card = manage.locator(f'#incident-detail li[data-request-id="{raised["id"]}"]')
        expect(card.locator(".report-to")).to_have_text(
            "Report to Nyayo stadium gate 14 (1.3045° S, 36.8253° E)"
        )
        card.locator("details.request-edit summary").click()
        prefix = f"#req-{raised['id']}-report"
        expect(manage.locator(f"{prefix}-lat")).to_have_value("-1.3045")
        edit_map = manage.locator(f"{prefix}-map svg.picker")
        expect(edit_map).to_be_visible()
        width, height = _size(edit_map)
        edit_map.click(position={"x": width * 0.25, "y": height * 0.3})
        moved_lat = float(manage.input_value(f"{prefix}-lat"))
        assert moved_lat != -1.3045
        card.locator(".edit-save").click()
        expect(card.locator(".report-to")).not_to_contain_text("1.3045° S")
        edited = site.api("GET", f"/incidents/{incident['id']}", manager)["requests"]
        assert next(r for r in edited if r["id"] == raised["id"])["report_lat"] == moved_lat
        card.locator("details.request-edit summary").click()
        manage.click(f"{prefix}-place .place-clear")
        card.locator(".edit-save").click()
        expect(card.locator(".report-to")).to_have_text("Report to Nyayo stadium gate 14")
        edited = site.api("GET", f"/incidents/{incident['id']}", manager)["requests"]
        cleared = next(r for r in edited if r["id"] == raised["id"])
        assert (cleared["report_lat"], cleared["report_lon"]) == (None, None)

        # Only one coordinate: refused in the page, nothing raised.
        manage.fill("#raise-quantity", "1")
        manage.fill("#raise-report-to", "Half a place")
        manage.fill("#raise-report-lat", "-1.3")
        manage.click("#raise-form button[type=submit]")
        expect(manage.locator("#notices")).to_contain_text("give both latitude and longitude")
        requests = site.api("GET", f"/incidents/{incident['id']}", manager)["requests"]
        assert all(r["report_to"] != "Half a place" for r in requests)


def _tile_of(lat: float, lon: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = (lon + 180) / 360 * n
    phi = math.radians(lat)
    y = (1 - math.log(math.tan(math.pi / 4 + phi / 2)) / math.pi) / 2 * n
    return int(x), int(y)


def test_configured_tiles_are_drawn_under_the_geography_and_line_up_with_it(
    browser: Any, tiled_site: Site, tiles: TileServer
) -> None:
    site = tiled_site
    policy = httpx.get(f"{site.base_url}/board").headers["content-security-policy"]
    assert f"img-src 'self' data: {tiles.origin};" in policy
    manager = site.world.token("manager", "nairobi")
    incident = site.api(
        "POST", "/incidents", manager, json={"incident_type": "flood", "title": "Tiled flood"}
    )
    loaded: list[str] = []
    refused: list[str] = []
    observer = site.world.token("observer", "nairobi")
    with signed_in(browser, site, f"/board#incident={incident['id']}", observer) as board:
        board.on(
            "response",
            lambda r: loaded.append(r.url) if r.url.startswith(tiles.origin) and r.ok else None,
        )
        board.on(
            "console",
            lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
        )
        board.reload()
        expect(board.locator("#conn")).to_have_attribute("data-state", "live", timeout=10_000)
        board.evaluate("window.__sameDocument = true")
        expect(board.locator('#map svg path[data-country="KEN"]')).to_have_count(1)
        images = board.locator("#map svg g.tiles image.tile")
        expect(images.first).to_be_attached()
        count = images.count()
        assert 1 <= count <= 48
        # Tiles first, the borders over them, then the cities.
        order = board.eval_on_selector(
            "#map svg", "s => [...s.children].map(c => c.getAttribute('class'))"
        )
        assert order.index("tiles") < order.index("land") < order.index("city origin")
        # The tiles show the water themselves: no lakes or rivers drawn over them.
        assert board.locator("#map svg g.water path").count() == 0
        expect(board.locator("#map svg .attribution")).to_contain_text("© Test tiles")
        # Every tile drawn was fetched from the tile server, and answered.
        drawn = board.eval_on_selector_all(
            "#map svg image.tile", "els => els.map(e => e.getAttribute('href'))"
        )
        board.wait_for_function(
            f"() => performance.getEntriesByType('resource')"
            f".filter(e => e.name.startsWith('{tiles.origin}')).length >= {count}"
        )
        assert set(drawn) <= set(loaded), (drawn, loaded)
        assert {tiles.origin + p for p in tiles.paths} >= set(drawn)
        # Nairobi's diamond lies inside the tile that holds Nairobi at the zoom drawn.
        z = int(drawn[0].split("/tiles/")[1].split("/")[0])
        x, y = _tile_of(*NAIROBI, z)
        tile = board.locator(f'#map svg image.tile[data-tile="{z}/{x}/{y}"]')
        expect(tile).to_have_count(1)
        t = tile.bounding_box()
        o = board.locator("#map svg g.city.origin rect").bounding_box()
        assert t is not None and o is not None
        cx, cy = o["x"] + o["width"] / 2, o["y"] + o["height"] / 2
        assert t["x"] <= cx <= t["x"] + t["width"] and t["y"] <= cy <= t["y"] + t["height"]
    assert refused == []


def test_a_tile_url_without_its_placeholders_or_not_http_is_refused() -> None:
    from pydantic import ValidationError

    for bad in ("https://tiles.example.org/tile.png", "ftp://x/{z}/{x}/{y}.png", "/{z}/{x}/{y}"):
        with pytest.raises(ValidationError, match=re.escape("{z}, {x} and {y}")):
            Settings(map_tile_url=bad)
    good = Settings(map_tile_url="https://tiles.example.org:8443/osm/{z}/{x}/{y}.png")
    assert good.map_tile_url is not None
    assert Settings(map_tile_url="").map_tile_url is None
