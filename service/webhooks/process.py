"""`aidmesh webhooks`: the delivery worker in a process of its own.

A replica delivers webhooks from its own event loop by default. Where the websocket
fan-out matters more than how soon a receiver hears (a busy network on few cores), the
replicas run with `AIDMESH_WEBHOOKS_ENABLED=false` and one or more of these processes
deliver instead: the same worker (service/webhooks/worker.py), with its leases, cursors
and retries in the shared database, so any number of them may run, beside replicas or
on another host, and a killed one loses nothing.

The process lowers its own CPU priority (`--nice`, 10 by default): a delivery may wait a
few milliseconds for a core, a websocket client's frame should not. It listens to the
Redis bus to be woken when an event is committed (the replicas publish every event
there), polls every `webhook_poll_interval_s` for retries and for events whose bus
message was lost, and publishes its `webhook.disabled` notices on the bus for the
replicas to pass to the pages. Prometheus metrics (deliveries by outcome, queue depth
and oldest undelivered age per endpoint) are served on `--metrics-port`.

SIGTERM or SIGINT stops it: sends under way are abandoned (whoever takes the endpoint
next sends their events again: at least once, receivers deduplicate on `webhook-id`)
and the leases are let go at once, for another worker to take without waiting for them
to run out.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from contextlib import AsyncExitStack

from realtime.redis_bus import RedisBus
from service.executor import utc_now
from service.main import channel_for
from service.persistence.db import Database, build_engine, migrate
from service.settings import Settings
from service.webhooks.sender import Resolver
from service.webhooks.wiring import start_webhooks

log = logging.getLogger(__name__)


class NoBus(Exception):
    """The worker needs the replicas' Redis: without it no event would wake it."""


async def run_worker(
    settings: Settings,
    stop: asyncio.Event,
    *,
    resolver: Resolver | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Deliver until `stop` is set, then close everything down in order."""
    redis_url = settings.redis_url
    if not redis_url:
        raise NoBus(
            "aidmesh webhooks runs beside replicas that share its database and Redis: "
            "set AIDMESH_REDIS_URL (or REDIS_URL) to their Redis"
        )
    # Delivery is this process's one job, whatever the replicas were told.
    settings = settings.model_copy(update={"webhooks_enabled": True})
    async with AsyncExitStack() as stack:
        engine = build_engine(settings)
        stack.callback(engine.dispose)
        migrate(engine)
        db = Database(engine)
        bus = RedisBus(redis_url, channel=channel_for(settings, redis_url))
        await bus.start()
        stack.push_async_callback(bus.close)
        parts = await start_webhooks(settings, db, bus, utc_now, resolver, stack)
        assert parts.worker is not None
        log.info(
            "webhook worker ready: pid %d, up to %d endpoints, %d incidents at once each",
            os.getpid(),
            settings.webhook_max_endpoints,
            settings.webhook_concurrency,
        )
        if on_ready is not None:
            on_ready()
        await stop.wait()
        held = len(parts.worker.endpoints)
        log.info("webhook worker stopping: letting go of %d endpoints", held)
    log.info("webhook worker stopped")


def serve_metrics(host: str, port: int) -> None:
    """Prometheus metrics of this process on http://host:port/metrics (a thread)."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=host)
    log.info("webhook worker metrics on http://%s:%d/metrics", host, port)


def main(settings: Settings, *, nice: int, metrics_host: str, metrics_port: int) -> int:
    """The `aidmesh webhooks` command; returns the exit status."""
    if nice:
        os.nice(nice)
    if metrics_port:
        serve_metrics(metrics_host, metrics_port)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run_worker(settings, stop)

    try:
        asyncio.run(run())
    except NoBus as exc:
        log.error("%s", exc)
        return 2
    return 0
