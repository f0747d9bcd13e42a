"""Serves every page of the table in `pages.py` from one HTML shell, and their assets
from `static/`.

The shell carries the navigation, the page's module and a JSON data block with the
table of pages and the lifecycle vocabulary (`vocabulary.py`); the module draws the
rest. The pages talk to the same REST API and websocket as every other client; nothing
here reads the database. Every asset ships in the package: no CDN, no build step.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from string import Template

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import FileResponse, HTMLResponse

from service.settings import Settings, tile_origin
from service.web import geography
from service.web.pages import PAGES, Page
from service.web.vocabulary import vocabulary

STATIC_DIR = Path(__file__).resolve().parent / "static"
WORKER = Path(__file__).resolve().parent / "worker.js"


def content_security_policy(tile_origin: str | None = None) -> str:
    """Scripts, styles and images only from this origin (the websocket goes back to it
    too); images also from the map's tile server, when the deployment configures one."""
    images = "img-src 'self' data:" + (f" {tile_origin}" if tile_origin else "")
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            images,
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


CONTENT_SECURITY_POLICY = content_security_policy()
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    # Revalidate on every load (an asset's ETag makes that cheap), so an upgrade shows at once.
    "Cache-Control": "no-cache",
}
_MEDIA_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}
_ASSET_NAME = r"^[a-z0-9][a-z0-9-]*\.(css|js|svg|json)$"

router = APIRouter(include_in_schema=False)


def _file(name: str) -> FileResponse:
    path = STATIC_DIR / name
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no asset '{name}'")
    return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers=_HEADERS)


def _data_block(value: object) -> str:
    """JSON safe inside <script type="application/json">: no `<`, `>` or `&` left raw,
    so no `</script>` can end the block early. A data block is never run, so the
    policy's `script-src 'self'` does not apply to it."""
    text = json.dumps(value, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _nav(current: Page) -> str:
    links = []
    for page in PAGES:
        if page.nav_label is None:
            continue
        here = ' aria-current="page"' if page is current else ""
        # The pages' script puts the label in the reader's language (data-i18n).
        key = f"page.{page.page_id}.nav"
        links.append(
            f'<a href="{html.escape(page.path)}"{here} data-i18n="{html.escape(key)}">'
            f"{html.escape(page.nav_label)}</a>"
        )
    return "".join(links)


@dataclass(frozen=True, slots=True)
class MapTiles:
    """The deployment's raster tiles for the map, as the pages get them."""

    url: str | None = None
    attribution: str = ""
    max_zoom: int = 19

    @classmethod
    def of(cls, settings: Settings | None) -> MapTiles:
        if settings is None or not settings.map_tile_url:
            return cls()
        return cls(settings.map_tile_url, settings.map_tile_attribution, settings.map_tile_max_zoom)

    def public(self) -> dict[str, object]:
        return {"tile_url": self.url, "attribution": self.attribution, "max_zoom": self.max_zoom}


@cache
def render_shell(page: Page, tiles: MapTiles = MapTiles()) -> str:
    """The one HTML shell, filled for `page` (the same bytes for every request)."""
    shell = Template((STATIC_DIR / "shell.html").read_text(encoding="utf-8"))
    title = page.title if page.page_id == "index" else f"{page.title} · aidmesh"
    data = {
        "page": page.page_id,
        "pages": [p.public() for p in PAGES],
        "vocabulary": vocabulary(),
        "release": release(),
        "map": tiles.public(),
    }
    return shell.substitute(
        title=html.escape(title),
        data=_data_block(data),
        module=html.escape(page.module),
        page_id=html.escape(page.page_id),
        nav=_nav(page),
    )


@cache
def release() -> str:
    """This release of the pages: the package's version and a digest of the shell, the
    assets, the table of pages and the vocabulary. The offline caches are named by it, so a
    new release replaces them."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.iterdir()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(WORKER.read_bytes())
    digest.update(json.dumps([[p.public() for p in PAGES], vocabulary()], sort_keys=True).encode())
    return f"{package_version()}-{digest.hexdigest()[:16]}"


def package_version() -> str:
    try:
        return metadata.version("aidmesh")
    except metadata.PackageNotFoundError:  # a checkout that was never installed
        return "0"


def precache() -> list[str]:
    """What a page needs to open offline: the shell of every page with a fixed address,
    and every asset."""
    pages = [page.path for page in PAGES if "{" not in page.path]
    assets = sorted(
        f"/static/{p.name}" for p in STATIC_DIR.iterdir() if re.fullmatch(_ASSET_NAME, p.name)
    )
    return pages + assets


@cache
def render_worker() -> str:
    head = f"const RELEASE = {json.dumps(release())};\nconst PRECACHE = {json.dumps(precache())};\n"
    return head + WORKER.read_text(encoding="utf-8")


def _page_route(page: Page) -> Callable[[Request], HTMLResponse]:
    def show_page(request: Request) -> HTMLResponse:
        parts = getattr(request.app.state, "parts", None)
        tiles = MapTiles.of(parts.settings if parts is not None else None)
        if tiles.url is None:
            return HTMLResponse(render_shell(page), headers=_HEADERS)
        csp = content_security_policy(tile_origin(tiles.url))
        headers = {**_HEADERS, "Content-Security-Policy": csp}
        return HTMLResponse(render_shell(page, tiles), headers=headers)

    show_page.__name__ = f"page_{page.page_id}"
    show_page.__doc__ = page.summary or page.title
    return show_page


for _page in PAGES:
    router.add_api_route(_page.path, _page_route(_page), methods=["GET"])


@router.get("/sw.js")
def service_worker() -> Response:
    """The pages' service worker, at the root so that its scope is the whole site."""
    headers = {**_HEADERS, "Service-Worker-Allowed": "/"}
    return Response(render_worker(), media_type=_MEDIA_TYPES[".js"], headers=headers)


@router.get("/static/{asset}", response_class=FileResponse)
def static_asset(asset: str, request: Request) -> Response:
    """One asset of the pages, by its plain file name (no folders, so no way out of STATIC_DIR)."""
    if re.fullmatch(_ASSET_NAME, asset) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no asset '{asset}'")
    if asset == geography.ASSET:
        return _geography(request)
    return _file(asset)


@cache
def _geography_bytes() -> tuple[bytes, bytes]:
    raw = (STATIC_DIR / geography.ASSET).read_bytes()
    return raw, gzip.compress(raw, compresslevel=9, mtime=0)


def _geography(request: Request) -> Response:
    """The map's geography (1.1 MB, 233 KB compressed): compressed for browsers
    that take gzip, and kept for a day, since its content changes only with its version."""
    raw, packed = _geography_bytes()
    headers = {
        **_HEADERS,
        "Cache-Control": "public, max-age=86400",
        "ETag": f'"{geography.SHA256[:32]}"',
        "Vary": "Accept-Encoding",
    }
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(packed, media_type=_MEDIA_TYPES[".json"], headers=headers)
    return Response(raw, media_type=_MEDIA_TYPES[".json"], headers=headers)
