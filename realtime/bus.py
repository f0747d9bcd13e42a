"""The event bus interface and its in-process implementation.

A bus carries serialised events from the replica that committed them to every
replica's gateway. It is the fast path, never the record: delivery is at most
once, so listeners notice gaps (and reconnects, via `on_reconnect`) and fill
them from the events table.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

Listener = Callable[[bytes], None]


def stop_if_cancelled(exc: Exception) -> None:
    """Raise `CancelledError` if the running task is being cancelled: a client library
    may turn the cancellation into its own error, and a loop that catches errors to carry
    on would then never stop (closing it would wait forever)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from exc


class EventBus(Protocol):
    """Start, close, publish (one or many), add a listener, learn of a reconnect."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, message: bytes) -> None:
        """Send one serialised event to every replica's listeners (at most once)."""
        ...

    async def publish_many(self, messages: list[bytes]) -> None:
        """`publish` each message, in order, in one exchange with the bus."""
        ...

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(message)` in the event loop for every message received."""
        ...

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """Call `callback()` after the bus recovered from a lost connection."""
        ...


class InMemoryBus:
    """One process, no network: publish calls every listener directly."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._reconnect: list[Callable[[], None]] = []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._listeners.clear()

    async def publish(self, message: bytes) -> None:
        for listener in list(self._listeners):
            try:
                listener(message)
            except Exception:
                log.exception("bus listener failed")

    async def publish_many(self, messages: list[bytes]) -> None:
        for message in messages:
            await self.publish(message)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        self._reconnect.append(callback)
