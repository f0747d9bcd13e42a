"""Calls gathered into one: what many callers ask within one turn of the event loop (or
a short window) is done by one call, and each caller gets its own answer.

Used where each caller's own round trip would cost more than the work: the webhook
worker's statements (`service.webhooks.worker`) and PostgreSQL's token lookups
(`service.adapters.pg_claims.PgTokens`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Gathered(Generic[T, R]):
    """Calls made within one turn of the event loop (or `window` seconds) run as one
    call of `run` with all their items in order; `run` answers each item in the same
    order. Each caller gets its own answer, or the exception the whole call raised. One
    call is in flight at a time: what arrives meanwhile goes in the next one."""

    def __init__(self, run: Callable[[list[T]], Awaitable[list[R]]], window: float = 0.0) -> None:
        self._run = run
        self._window = window
        self._items: list[T] = []
        self._waiting: list[asyncio.Future[R]] = []
        self._scheduled = False
        self._flushing: set[asyncio.Task[None]] = set()

    async def __call__(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._items.append(item)
        self._waiting.append(future)
        self._schedule(loop)
        return await future

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled and not self._flushing and self._items:
            self._scheduled = True
            loop.call_later(self._window, self._start)

    def _start(self) -> None:
        items, waiting = self._items, self._waiting
        self._items, self._waiting, self._scheduled = [], [], False
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._flush(items, waiting))
        self._flushing.add(task)

        def done(task: asyncio.Task[None]) -> None:
            self._flushing.discard(task)
            self._schedule(loop)

        task.add_done_callback(done)

    async def _flush(self, items: list[T], waiting: list[asyncio.Future[R]]) -> None:
        try:
            results = await self._run(items)
        except BaseException as exc:  # handed to every caller, who handles it
            for future in waiting:
                if future.done():
                    continue
                if isinstance(exc, asyncio.CancelledError):
                    future.cancel()
                else:
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for future, result in zip(waiting, results, strict=True):
            if not future.done():
                future.set_result(result)
