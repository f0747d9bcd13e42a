"""Serves the pages (`/`, `/board`, `/respond`, `/manage`, `/webhooks`) and their assets
from `static/`.

The pages talk to the same REST API and websocket as every other client; nothing
here reads the database. Every asset ships in the package: no CDN, no build step.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parent / "static"

# Scripts, styles and images only from this origin; the websocket goes back to it too.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    # Revalidate on every load (the ETag makes that cheap), so an upgrade shows at once.
    "Cache-Control": "no-cache",
}
_MEDIA_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
_ASSET_NAME = r"^[a-z0-9][a-z0-9-]*\.(css|js|svg)$"

router = APIRouter(include_in_schema=False)


def _file(name: str) -> FileResponse:
    path = STATIC_DIR / name
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no asset '{name}'")
    return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers=_HEADERS)


@router.get("/")
def index() -> FileResponse:
    """Links to the three pages."""
    return _file("index.html")


@router.get("/board")
def board() -> FileResponse:
    """The live incident board: for operators, observers and everyone."""
    return _file("board.html")


@router.get("/respond")
def respond() -> FileResponse:
    """The responder console: a city's inbox and its claims."""
    return _file("respond.html")


@router.get("/manage")
def manage() -> FileResponse:
    """The manager console: declare, raise, accept or decline, cancel, close."""
    return _file("manage.html")


@router.get("/webhooks")
def webhooks() -> FileResponse:
    """Webhook endpoints of a city: register, pause, rotate, ping, the delivery log."""
    return _file("webhooks.html")


@router.get("/static/{asset}", response_class=FileResponse)
def static_asset(asset: str) -> FileResponse:
    """One asset of the pages, by its plain file name (no folders, so no way out of STATIC_DIR)."""
    if re.fullmatch(_ASSET_NAME, asset) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no asset '{asset}'")
    return _file(asset)
