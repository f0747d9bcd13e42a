"""Webhooks to cities' own systems: the sender (checked addresses, signed requests) and the
delivery worker (leases, per-incident cursors over the events table, retries)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.webhooks.sender import Sender
    from service.webhooks.worker import WebhookWorker


@dataclass
class WebhookParts:
    """What the routes reach: the sender checks URLs; the worker (None where delivery is
    off) is woken when something is queued."""

    sender: Sender
    worker: WebhookWorker | None
