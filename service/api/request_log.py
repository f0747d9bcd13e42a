"""One log line and one set of metrics per HTTP request and per websocket session.

`RequestLog` is pure ASGI middleware (it wraps `send` only to read the status and
add `X-Request-ID`, so streaming responses pass through untouched). `/ws` is
served ahead of the middleware stack, so its sessions are logged by
`log_ws_session`, the hook the websocket endpoint calls when a session ends.

Each line names the route template (`/api/v1/incidents/{incident_id}`), never the
raw path or query: those may carry a ticket or a token sent there by mistake.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.logs import current_request
from service.metrics import observe_http

log = logging.getLogger("aidmesh.requests")

REQUEST_ID_HEADER = b"x-request-id"
# An incoming id is kept when it looks like one (a proxy's or a client's); anything
# else could forge or break log lines, so a fresh one is made instead.
_SANE_ID = re.compile(rb"^[A-Za-z0-9._:\-]{8,128}$")
# Probes hit these every few seconds: their lines are DEBUG unless they fail.
_PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
UNMATCHED = "unmatched"


def request_id_of(scope: Scope) -> str:
    """The client's `X-Request-ID` when sane, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER:
            if _SANE_ID.match(value):
                return str(value.decode("ascii"))
            break
    return uuid.uuid4().hex


def route_template(scope: Scope, root_path: str = "") -> str:
    """The template of the route that served `scope` (`/api/v1/incidents/{incident_id}`),
    `/mount/{path}` for a mounted app, or `unmatched`.

    Built from the matched path parameters rather than from router internals, which
    differ between FastAPI versions: each parameter's value, in path order, is put
    back as `{name}`. `root_path` is the scope's before routing (a mount extends it).
    """
    if "endpoint" not in scope:
        return UNMATCHED
    routed_root: str = scope.get("root_path", "")
    if routed_root != root_path and routed_root.startswith(root_path):
        return routed_root[len(root_path) :] + "/{path}"
    path: str = scope["path"]
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    params = list((scope.get("path_params") or {}).items())
    if not params:
        return path
    segments = path.split("/")
    at = 0
    for i, segment in enumerate(segments):
        if at < len(params) and segment == str(params[at][1]):
            segments[i] = "{" + params[at][0] + "}"
            at += 1
    return "/".join(segments) if at == len(params) else UNMATCHED


class RequestLog:
    """Pure ASGI middleware: request id, one log line, HTTP metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        info: dict[str, Any] = {"request_id": request_id, "role": None, "city_id": None}
        reset = current_request.set(info)
        root_path = scope.get("root_path", "")
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception ends in a 500
        id_header = (REQUEST_ID_HEADER, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_request.reset(reset)
            duration_s = time.perf_counter() - started
            route = route_template(scope, root_path)
            observe_http(scope["method"], route, status, duration_s)
            level = logging.INFO
            if status >= 500:
                level = logging.WARNING
            elif route in _PROBES:
                level = logging.DEBUG
            _write(level, "http.request", scope["method"], route, status, duration_s, info)


def log_ws_session(
    scope: Scope, role: str | None, city_id: int | None, duration_s: float, reason: str
) -> None:
    """The websocket endpoint's hook: one line per session, accepted or refused."""
    accepted = role is not None
    status = 101 if accepted else 403
    route = "/ws"
    observe_http("GET", route, status, None)
    info = {"request_id": request_id_of(scope), "role": role, "city_id": city_id}
    _write(logging.INFO, "ws.session", "GET", route, status, duration_s, info, reason=reason)


def _write(
    level: int,
    event: str,
    method: str,
    route: str,
    status: int,
    duration_s: float,
    info: dict[str, Any],
    **more: Any,
) -> None:
    if not log.isEnabledFor(level):
        return
    duration_ms = round(duration_s * 1000, 2)
    who = f" {info['role']}" if info["role"] else ""
    if info["city_id"] is not None:
        who += f"@city:{info['city_id']}"
    tail = f" ({more['reason']})" if "reason" in more else ""
    log.log(
        level,
        "%s %s %d %.1f ms%s request_id=%s%s",
        method,
        route,
        status,
        duration_ms,
        who,
        info["request_id"],
        tail,
        extra={
            "event": event,
            "method": method,
            "path": route,
            "status": status,
            "duration_ms": duration_ms,
            "request_id": info["request_id"],
            "role": info["role"],
            "city_id": info["city_id"],
            **more,
        },
    )
