"""Runs the app under uvicorn on a socket aidmesh binds itself, before anything else starts.

Binding first means a busy port is one clear line and nothing else: no database
written, no token minted, no scheduler started and cancelled. The server says
"ready" only once it is listening.
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import Any

import uvicorn

from service.settings import Settings

log = logging.getLogger("aidmesh")


class CannotListen(Exception):
    """The address could not be bound; the message says which and why."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port`, or `CannotListen`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        # Connections that arrive while the app starts wait in the backlog.
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            reason += " (another process holds it: stop that one or choose another --port)"
        raise CannotListen(f"cannot listen on {host}:{port}: {reason}") from None
    sock.set_inheritable(True)
    return sock


def base_url(host: str, port: int) -> str:
    """The URL a local client reaches a server bound to `host:port` at."""
    reachable = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    if ":" in reachable:
        reachable = f"[{reachable}]"
    return f"http://{reachable}:{port}"


class Server(uvicorn.Server):
    """uvicorn's server, saying `ready` once the app has started and the socket listens."""

    def __init__(self, config: uvicorn.Config, ready_message: str) -> None:
        super().__init__(config)
        self.ready_message = ready_message

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and not self.should_exit:
            log.info("%s", self.ready_message)


def server_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """uvicorn's settings for aidmesh; logging is aidmesh's own (`service.logs`)."""
    options: dict[str, Any] = {
        "log_config": None,
        "access_log": False,
        # Compression costs a fifth of the fan-out CPU and ~34 KB per connection.
        "ws_per_message_deflate": False,
        "ws_max_size": settings.ws_max_message_bytes,
        "proxy_headers": False,
        **overrides,
    }
    return uvicorn.Config(app, **options)
