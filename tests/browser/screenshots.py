"""Take the README's screenshots from a running demo: `make screenshots`.

Starts `aidmesh demo` in a scratch directory on a free port, lets its responders claim
for a while, gives two of the flood's requests a staging point on the map, and writes
each page (board, respond, manage, the board's map, the after-action report, the
library) at desktop (1280x800) and phone (390x844) width to docs/screenshots/, as
`<page>-desktop.png` and `<page>-phone.png`. Re-runnable: it overwrites the files.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.procs import end, free_port, start

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "screenshots"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
# Staging points for two of the flood's requests: (resource, report-to, lat, lon).
STAGING = [
    ("swift-water-rescue-team", "Kibera DC grounds", -1.3133, 36.7870),
    ("high-capacity-pump", "Mukuru kwa Njenga depot", -1.3110, 36.8890),
]


def _wait_for(path: Path, pattern: str, timeout_s: float) -> re.Match[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = re.search(pattern, path.read_text(errors="replace"))
        if found:
            return found
        time.sleep(0.2)
    raise SystemExit(f"the demo never printed {pattern!r}:\n{path.read_text(errors='replace')}")


def _tokens(output: str) -> dict[str, str]:
    tokens = {}
    for role, city in (("observer", "Nairobi"), ("responder", "Thika"), ("manager", "Nairobi")):
        found = re.search(rf"{role} (?:in|of) {city}:\s+(amk_\S+)", output)
        if found is None:
            raise SystemExit(f"no {role} token in the demo's output:\n{output}")
        tokens[role] = found.group(1)
    return tokens


def _stage(api: httpx.Client, manager: str, incident_id: int) -> None:
    headers = {"Authorization": f"Bearer {manager}"}
    detail = api.get(f"/incidents/{incident_id}", headers=headers).json()
    for resource, name, lat, lon in STAGING:
        request = next((r for r in detail["requests"] if r["resource"] == resource), None)
        if request is None or request["status"] in ("fulfilled", "cancelled", "expired"):
            continue
        body = {"report_to": name, "report_lat": lat, "report_lon": lon}
        api.patch(f"/requests/{request['id']}", json=body, headers=headers).raise_for_status()


def _shoot(
    browser: Any,
    base: str,
    path: str,
    token: str,
    out: Path,
    viewport: dict[str, int],
    element: str | None = None,
    ready: str = "#conn[data-state=live]",
) -> None:
    context = browser.new_context(viewport=viewport, color_scheme="dark")
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(base + path)
        page.click("#advanced-sign-in summary")
        page.fill("#token", token)
        page.press("#token", "Enter")
        page.wait_for_selector(ready)
        page.wait_for_load_state("networkidle")
        if "/board" in path:
            page.wait_for_selector('#map svg path[data-country="KEN"]')
        if element == "#map":
            page.click('#map [data-view="site"]')  # close in, where the staging points are
        page.wait_for_timeout(500)  # let the last frame paint; the images are not compared
        if element is not None:
            page.locator(element).screenshot(path=str(out))
        else:
            page.screenshot(path=str(out))
    finally:
        context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=25.0, help="seconds of claims first")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="aidmesh-shots-") as scratch:
        log = Path(scratch) / "demo.out"
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        script = (
            "from service.demo import run_demo; "
            f"raise SystemExit(run_demo('127.0.0.1', {port}, 30))"
        )
        proc = start([sys.executable, "-c", script], log, env=env, cwd=Path(scratch))
        try:
            _wait_for(log, "Ctrl-C stops the demo", timeout_s=90)
            tokens = _tokens(log.read_text())
            base = f"http://127.0.0.1:{port}"
            api = httpx.Client(base_url=f"{base}/api/v1", timeout=10)
            observer = {"Authorization": f"Bearer {tokens['observer']}"}
            [flood] = api.get("/incidents", headers=observer).json()["data"]
            time.sleep(args.settle)
            _stage(api, tokens["manager"], flood["id"])
            at = f"#incident={flood['id']}"
            shots = [
                ("board", f"/board{at}", "observer", None, "#conn[data-state=live]"),
                ("respond", "/respond", "responder", None, "#conn[data-state=live]"),
                ("manage", f"/manage{at}", "manager", None, "#conn[data-state=live]"),
                ("map", f"/board{at}", "observer", "#map", "#conn[data-state=live]"),
                ("report", f"/incidents/{flood['id']}/report", "observer", None, "#report-title"),
                ("library", "/library", "manager", None, "#library-title"),
            ]
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
                )
                try:
                    for name, path, role, element, ready in shots:
                        for width, viewport in VIEWPORTS.items():
                            out = args.out / f"{name}-{width}.png"
                            _shoot(browser, base, path, tokens[role], out, viewport, element, ready)
                            print(f"{out.relative_to(ROOT)}: {out.stat().st_size // 1024} KB")
                finally:
                    browser.close()
        finally:
            end(proc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
