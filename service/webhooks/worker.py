"""The delivery worker of one replica: leases endpoints, sends their events, records outcomes.

Per endpoint, one task holds the endpoint's lease and delivers: the pings and
redeliveries that are due, then each incident's events from its cursor on, in seq order
(one incident's events one at a time; up to `webhook_concurrency` incidents at once). An
event that fails stays first in its incident's line until it is delivered, given up or
the endpoint is disabled; the incident's later events wait behind it, other incidents
do not. After each incident's run of sends, the attempts and the cursor are written in
one transaction: a replica killed in between sends those events again (at least once;
receivers deduplicate on `webhook-id`).

The task wakes when a committed event crosses the bus (`wake`), when a retry comes due
and every `webhook_poll_interval_s` (an event whose publish was lost).

The endpoints' tasks do not each go to the database: a committed event wakes all of
them at once, and their lease renewals, reads of due work and writes of outcomes made in
the same turn of the event loop go as one statement or one transaction (`service.gathered`).
Fifty endpoints taking the same event cost about what one does, in the database and in
shaping the event, which is what keeps delivery out of the fan-out's way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import orjson
from anyio import to_thread

from service import metrics
from service.domain.webhooks import (
    Decision,
    Outcome,
    RetryPolicy,
    city_sees,
    decide,
    parse_retry_after,
    secret_key,
    signing_headers,
    wants,
)
from service.gathered import Gathered
from service.persistence.db import Database
from service.settings import Settings
from service.webhooks import store
from service.webhooks.sender import Reply, Sender

log = logging.getLogger(__name__)

PER_INCIDENT = 100  # events read per incident per batch
MAX_INCIDENTS = 500  # incidents read per batch
QUEUE_BATCH = 50
RECORD_WINDOW_S = 0.005  # outcomes written within this time share one transaction

T = TypeVar("T")
R = TypeVar("R")


def _in_thread(run: Callable[[list[T]], list[R]], window: float = 0.0) -> Gathered[T, R]:
    """Calls gathered into one call of the blocking `run`, in a worker thread."""

    async def in_thread(items: list[T]) -> list[R]:
        return await to_thread.run_sync(run, items)

    return Gathered(in_thread, window)


def policy_of(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        base=timedelta(seconds=settings.webhook_retry_base_s),
        cap=timedelta(seconds=settings.webhook_retry_cap_s),
        window=timedelta(seconds=settings.webhook_retry_window_s),
    )


def webhook_disabled_notice(
    endpoint_id: int, city_id: int, url: str, reason: str, at: datetime
) -> dict[str, Any]:
    """The bus message (and websocket frame) saying a city's endpoint was disabled: not
    an incident's event (those have a seq per incident), a notice to the city's pages."""
    return {
        "type": "notice",
        "notice": {
            "kind": "webhook.disabled",
            "city_id": city_id,
            "endpoint_id": endpoint_id,
            "url": url,
            "reason": reason,
            "at": at.isoformat(),
        },
    }


def _body(event: dict[str, Any]) -> bytes:
    # The envelope every websocket client gets: {"type": "event", "event": {...}}.
    return orjson.dumps({"type": "event", "event": event})


class WebhookWorker:
    def __init__(
        self,
        db: Database,
        sender: Sender,
        settings: Settings,
        clock: Callable[[], datetime],
        *,
        owner: str | None = None,
        jitter: Callable[[], float] = random.random,
        publish: Callable[[bytes], Awaitable[None]] | None = None,
    ) -> None:
        self.db = db
        self.sender = sender
        self.settings = settings
        self.clock = clock
        self.policy = policy_of(settings)
        self.owner = owner or f"{socket.gethostname()[:40]}:{secrets.token_hex(4)}"
        self.jitter = jitter
        self.publish = publish
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._wakers: dict[int, asyncio.Event] = {}
        self._main: asyncio.Task[None] | None = None
        self._wake_main = asyncio.Event()
        self._closing = False
        self._announced: set[int] = set()  # endpoints whose disabling was announced
        self._renew = _in_thread(self._renew_all)
        self._due = _in_thread(self._due_all)
        self._backlog = _in_thread(self._backlog_all)
        self._record = _in_thread(self._record_all, RECORD_WINDOW_S)

    # The endpoints' database work, batched -------------------------------------------

    def _renew_all(self, endpoint_ids: list[int]) -> list[store.EndpointView | None]:
        now = self.clock()
        until = now + timedelta(seconds=self.settings.webhook_lease_s)
        views = store.renew_leases(self.db, endpoint_ids, self.owner, now, until)
        return [views.get(endpoint_id) for endpoint_id in endpoint_ids]

    def _due_all(self, endpoint_ids: list[int]) -> list[list[store.QueuedItem]]:
        due = store.due_queues(self.db, endpoint_ids, self.clock(), QUEUE_BATCH)
        return [due[endpoint_id] for endpoint_id in endpoint_ids]

    def _backlog_all(self, endpoint_ids: list[int]) -> list[store.Backlog]:
        pending = store.backlogs(self.db, endpoint_ids, PER_INCIDENT, MAX_INCIDENTS)
        return [pending[endpoint_id] for endpoint_id in endpoint_ids]

    def _record_all(self, batches: list[tuple[int, store.Outcomes]]) -> list[None]:
        store.record_all(self.db, self.clock(), batches)
        return [None] * len(batches)

    # Life ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._main = asyncio.get_running_loop().create_task(self._run(), name="webhooks")

    async def close(self) -> None:
        self._closing = True
        tasks = [t for t in (self._main, *self._tasks.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for endpoint_id in list(self._tasks):
            await to_thread.run_sync(store.release_lease, self.db, endpoint_id, self.owner)
        self._tasks.clear()
        await self.sender.aclose()

    def wake(self, _message: object = None) -> None:
        """A bus listener: something was committed; look for work now."""
        self._wake_main.set()
        for waker in self._wakers.values():
            waker.set()

    @property
    def endpoints(self) -> list[int]:
        """The endpoints this replica delivers for now."""
        return sorted(self._tasks)

    async def _run(self) -> None:
        interval = self.settings.webhook_poll_interval_s
        while True:
            try:
                await self._take_leases()
            except Exception:
                log.exception("webhooks: taking leases failed; retrying")
            self._wake_main.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wake_main.wait()

    async def _take_leases(self) -> None:
        for endpoint_id, task in list(self._tasks.items()):
            if task.done():
                del self._tasks[endpoint_id]
                self._wakers.pop(endpoint_id, None)
        room = self.settings.webhook_max_endpoints - len(self._tasks)
        now = self.clock()
        until = now + timedelta(seconds=self.settings.webhook_lease_s)
        taken = await to_thread.run_sync(store.take_leases, self.db, self.owner, now, until, room)
        for endpoint_id in taken:
            self._announced.discard(endpoint_id)
            self._wakers[endpoint_id] = asyncio.Event()
            self._tasks[endpoint_id] = asyncio.get_running_loop().create_task(
                self._serve(endpoint_id), name=f"webhook-{endpoint_id}"
            )

    # One endpoint ------------------------------------------------------------------------

    async def _serve(self, endpoint_id: int) -> None:
        """Deliver for one endpoint while the lease is ours and it is active."""
        try:
            while not self._closing:
                endpoint = await self._renew(endpoint_id)
                if endpoint is None:
                    break
                waker = self._wakers[endpoint_id]
                waker.clear()
                busy, next_due = await self._batch(endpoint)
                if busy:
                    continue
                wait = self.settings.webhook_poll_interval_s
                if next_due is not None:
                    wait = min(wait, max((next_due - self.clock()).total_seconds(), 0.0))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await waker.wait()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhooks: endpoint %d failed; its lease is taken again", endpoint_id)
        finally:
            metrics.forget_webhook_endpoint(endpoint_id)
            with contextlib.suppress(Exception):
                await self.sender.forget(endpoint_id)
            if not self._closing:
                # Paused, disabled or failed: let go at once, so a resume (here or on
                # another replica) does not wait for the lease to run out.
                with contextlib.suppress(Exception):
                    await to_thread.run_sync(store.release_lease, self.db, endpoint_id, self.owner)

    async def _batch(self, endpoint: store.EndpointView) -> tuple[bool, datetime | None]:
        """One pass; returns (whether it did anything, when a waiting retry is due)."""
        did = await self._queued(endpoint)
        pending = await self._backlog(endpoint.id)
        queue_depth = pending.depth
        metrics.observe_webhook_backlog(endpoint.id, queue_depth, pending.oldest_at, self.clock())
        now = self.clock()
        due = [h for h in pending.heads if h.next_attempt_at is None or h.next_attempt_at <= now]
        waiting = [h.next_attempt_at for h in pending.heads if h not in due]
        if due:
            limit = asyncio.Semaphore(self.settings.webhook_concurrency)
            deadline = time.monotonic() + self.settings.webhook_lease_s / 3
            state = _EndpointState(endpoint.last_success_at)
            await asyncio.gather(
                *(self._incident(endpoint, head, limit, deadline, state) for head in due)
            )
            did = True
        next_due = min((w for w in waiting if w is not None), default=None)
        return did, next_due

    async def _incident(
        self,
        endpoint: store.EndpointView,
        head: store.Head,
        limit: asyncio.Semaphore,
        deadline: float,
        state: _EndpointState,
    ) -> None:
        async with limit:
            done = store.Outcomes()
            cursor: dict[str, Any] = {
                "seq": head.cursor,
                "failures": head.failures,
                "failing_since": head.failing_since,
                "next_attempt_at": head.next_attempt_at,
            }
            moved = False
            failures, failing_since = head.failures, head.failing_since
            for event in head.events:
                if state.disabled or time.monotonic() > deadline:
                    break
                if not (
                    city_sees(event.get("audience") or {}, endpoint.city_id)
                    and wants(endpoint.event_types, event["type"])
                ):
                    cursor["seq"] = event["seq"]
                    moved = True
                    continue
                decision = await self._attempt(
                    endpoint, event, "stream", failures, failing_since, state, done
                )
                failures, failing_since = decision.failures, decision.failing_since
                cursor.update(
                    failures=failures,
                    failing_since=failing_since,
                    next_attempt_at=decision.next_attempt_at,
                )
                moved = True
                if not decision.advance:
                    break
                cursor["seq"] = event["seq"]
            if moved:
                done.cursors[head.incident_id] = cursor
            if done:
                await self._record((endpoint.id, done))
                await self._announce(endpoint, done)

    async def _queued(self, endpoint: store.EndpointView) -> bool:
        items = await self._due(endpoint.id)
        if not items:
            return False
        done = store.Outcomes()
        state = _EndpointState(endpoint.last_success_at)
        for item in items:
            if state.disabled:
                break
            event = (
                item.body["event"]
                if item.body
                else await to_thread.run_sync(store.queued_event, self.db, item.event_id)
            )
            if event is None:
                done.queue_done.append(item.id)  # the event is gone (its endpoint deleted)
                continue
            decision = await self._attempt(
                endpoint, event, item.kind, item.failures, item.failing_since, state, done
            )
            if decision.advance or decision.outcome is not Outcome.RETRYING:
                done.queue_done.append(item.id)
            else:
                done.queue_retry[item.id] = {
                    "failures": decision.failures,
                    "failing_since": decision.failing_since,
                    "next_attempt_at": decision.next_attempt_at,
                }
        await self._record((endpoint.id, done))
        await self._announce(endpoint, done)
        return True

    async def _announce(self, endpoint: store.EndpointView, done: store.Outcomes) -> None:
        """Tell the city's connected pages that the endpoint was disabled.

        The record is the endpoint's status and reason (committed just before, with the
        attempt that disabled it); this notice only makes it show at once. Sent once
        per batch by whichever incident disabled it first."""
        if done.disable is None or self.publish is None or endpoint.id in self._announced:
            return
        self._announced.add(endpoint.id)
        notice = webhook_disabled_notice(
            endpoint.id, endpoint.city_id, endpoint.url, done.disable, self.clock()
        )
        try:
            await self.publish(orjson.dumps(notice))
        except Exception:
            log.warning("webhook %d: the disabled notice was not published", endpoint.id)

    async def _attempt(
        self,
        endpoint: store.EndpointView,
        event: dict[str, Any],
        source: str,
        failures: int,
        failing_since: datetime | None,
        state: _EndpointState,
        done: store.Outcomes,
    ) -> Decision:
        body = _body(event)
        now = self.clock()
        keys = [secret_key(s) for s in endpoint.secrets]
        headers = signing_headers(keys, event["event_id"], int(now.timestamp()), body)
        reply: Reply = await self.sender.send(endpoint.id, endpoint.url, headers, body)
        now = self.clock()
        decision = decide(
            self.policy,
            status_code=reply.status_code,
            retry_after=parse_retry_after(reply.retry_after, now),
            now=now,
            failures=failures,
            failing_since=failing_since,
            last_success_at=state.last_success_at,
            jitter=self.jitter(),
        )
        metrics.WEBHOOK_DELIVERIES.labels(decision.outcome.value).inc()
        if decision.outcome is Outcome.DELIVERED:
            state.last_success_at = done.succeeded_at = now
        else:
            done.failed_at = now
            log.info(
                "webhook %d: %s of event %s: %s",
                endpoint.id,
                decision.outcome.value,
                event["event_id"],
                reply.status_code or reply.error,
            )
        if decision.disable is not None:
            state.disabled = True
            done.disable = decision.disable
            log.warning("webhook %d disabled: %s", endpoint.id, decision.disable)
        done.attempts.append(
            {
                "endpoint_id": endpoint.id,
                "event_id": event["event_id"],
                "event_type": str(event["type"])[:40],
                "incident_id": event.get("incident_id"),
                "seq": event.get("seq"),
                "source": source,
                "attempt": failures + 1,
                "attempted_at": now,
                "status_code": reply.status_code,
                "latency_ms": reply.latency_ms,
                "outcome": decision.outcome.value,
                "error": reply.error[:500],
                "response_excerpt": reply.excerpt[:1000],
                "next_retry_at": decision.next_attempt_at,
            }
        )
        return decision


class _EndpointState:
    """Shared by the incidents of one batch: a disable stops them all."""

    __slots__ = ("disabled", "last_success_at")

    def __init__(self, last_success_at: datetime | None) -> None:
        self.last_success_at = last_success_at
        self.disabled = False
