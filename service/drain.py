"""Graceful shutdown for rolling restarts: what a replica does between SIGTERM and exit.

uvicorn's own shutdown stops accepting connections, lets requests in flight finish
and waits for open connections for at most `timeout_graceful_shutdown`, then runs
the lifespan's shutdown (which publishes what is queued and closes the rest). Before
it, the drain turns `/readyz` not-ready and closes every websocket with 1012
(service restart), so clients reconnect to another replica at once and resume from
their last seqs; `AIDMESH_SHUTDOWN_DELAY_S` keeps serving (not ready) that long
first, for load balancers that must see `/readyz` fail before the port closes.
A replica exits within the delay, plus `AIDMESH_SHUTDOWN_GRACE_S`, plus the
lifespan's own bounded close (at most 5 s to publish what is queued).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import uvicorn

from realtime.gateway import Gateway
from service.serving import Server

log = logging.getLogger(__name__)

CLOSE_SERVICE_RESTART = 1012
RESTART_REASON = "service restart: reconnect to resume"


class Drain:
    """The replica's shutdown state, shared by the server, the lifespan and `/readyz`."""

    def __init__(self) -> None:
        self.started_at: float | None = None
        self._gateway: Gateway | None = None

    @property
    def draining(self) -> bool:
        return self.started_at is not None

    def attach(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def begin(self) -> None:
        """Not ready from now on; every websocket is told to go elsewhere."""
        if self.started_at is not None:
            return
        self.started_at = time.monotonic()
        closed = 0
        if self._gateway is not None:
            closed = self._gateway.close_all(CLOSE_SERVICE_RESTART, RESTART_REASON)
        log.warning("draining: not ready; %d websocket(s) closed with 1012", closed)

    def finished(self) -> None:
        if self.started_at is not None:
            log.warning("drained in %.2fs", time.monotonic() - self.started_at)


class DrainingServer(Server):
    """aidmesh's server (see service/serving.py), whose shutdown starts with the drain."""

    def __init__(
        self, config: uvicorn.Config, ready_message: str, drain: Drain, delay_s: float = 0.0
    ) -> None:
        super().__init__(config, ready_message)
        self.drain = drain
        self.delay_s = delay_s

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.drain.begin()
        if self.delay_s > 0 and not self.force_exit:
            await asyncio.sleep(self.delay_s)
        await super().shutdown(sockets)
