"""Liveness, readiness and metrics."""

from __future__ import annotations

import logging

from anyio import to_thread
from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.api.deps import AppParts, Parts
from service.metrics import refresh_open_request_gauges

log = logging.getLogger(__name__)

router = APIRouter()


@router.get("/healthz", tags=["health"])
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", tags=["health"])
async def readyz(parts: Parts) -> JSONResponse:
    """The database and the bus answer, and the replica is not shutting down."""
    if parts.drain is not None and parts.drain.draining:
        return JSONResponse(
            {"status": "draining", "checks": {"shutdown": "draining"}},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "1"},
        )
    checks: dict[str, str] = {}
    try:
        await to_thread.run_sync(parts.db.ping)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    ping = getattr(parts.bus, "ping", None)
    if ping is not None:
        try:
            await ping()
            checks["bus"] = "ok"
        except Exception as exc:
            checks["bus"] = f"unavailable: {type(exc).__name__}"
    else:
        checks["bus"] = "ok"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
    )


@router.get("/metrics", tags=["health"], include_in_schema=False)
async def metrics(parts: Parts) -> Response:
    """Prometheus text: the live path's figures, HTTP's, and what is open now."""
    try:
        await to_thread.run_sync(_refresh_open_requests, parts)
    except Exception as exc:
        # The other figures are still worth scraping while the database is away.
        log.warning("open request gauges not refreshed: %s", type(exc).__name__)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _refresh_open_requests(parts: AppParts) -> None:
    with parts.db.read() as session:
        refresh_open_request_gauges(session, parts.executor.clock())
