"""Builds the webhook parts of a replica from its settings (called by `create_app`)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import datetime

from realtime.bus import EventBus
from service.domain.webhooks import AddressPolicy
from service.persistence.db import Database
from service.settings import Settings
from service.webhooks import WebhookParts
from service.webhooks.sender import Resolver, Sender
from service.webhooks.worker import WebhookWorker


def address_policy(settings: Settings) -> AddressPolicy:
    return AddressPolicy.from_entries(
        settings.webhook_allowed_private, allow_http=settings.webhook_allow_http
    )


async def start_webhooks(
    settings: Settings,
    db: Database,
    bus: EventBus,
    clock: Callable[[], datetime],
    resolver: Resolver | None,
    stack: AsyncExitStack,
) -> WebhookParts:
    sender = Sender(
        address_policy(settings),
        resolver,
        timeout_s=settings.webhook_timeout_s,
        lanes=settings.webhook_concurrency + 1,
    )
    if not settings.webhooks_enabled:
        stack.push_async_callback(sender.aclose)
        return WebhookParts(sender, None)
    worker = WebhookWorker(db, sender, settings, clock, publish=bus.publish)
    await worker.start()
    stack.push_async_callback(worker.close)
    # Every committed event crossing the bus wakes the worker (it reads the events table).
    bus.add_listener(worker.wake)
    return WebhookParts(sender, worker)
