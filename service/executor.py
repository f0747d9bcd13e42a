"""Runs a command in one write transaction, then publishes its events.

Commands are plain synchronous functions over a session; the executor runs them
in a worker thread, commits, and only then hands the serialised events to the
bus. A crash between commit and publish loses nothing: events are rows first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from anyio import to_thread
from sqlalchemy.exc import IntegrityError, OperationalError

from playbooks import Catalogue, Playbook
from realtime.bus import EventBus, stop_if_cancelled
from realtime.envelope import encode
from service.claim_paths import ClaimPath, GeneralCommand
from service.commands import claims, escalation
from service.commands.context import CommandContext
from service.commands.presenters import claim_public
from service.domain.actors import SYSTEM, Actor
from service.domain.errors import ConcurrentChange
from service.metrics import observe_events
from service.models import ClaimCreate, ClaimPublic, EventPublic
from service.persistence.db import Database
from service.settings import Settings
from service.tokens import DatabaseTokens, TokenLookup

log = logging.getLogger(__name__)
T = TypeVar("T")
Clock = Callable[[], datetime]

# Deadlock and serialisation failures on PostgreSQL: the whole transaction is safe to retry.
_RETRYABLE_SQLSTATES = {"40001", "40P01"}
_ATTEMPTS = 3
# At most this many events per round trip to the bus.
_PUBLISH_BATCH = 256


def utc_now() -> datetime:
    return datetime.now(UTC)


class Executor:
    def __init__(
        self,
        db: Database,
        bus: EventBus,
        settings: Settings,
        catalogue: Catalogue,
        playbooks: Callable[[], Mapping[str, Playbook]],
        clock: Clock = utc_now,
        *,
        publish_queue_size: int = 10_000,
        claim_path: ClaimPath | None = None,
        tokens: TokenLookup | None = None,
    ) -> None:
        """`claim_path` decides claims (the general command by default); `tokens` is the
        token lookup REST and the websocket share (the ORM's by default)."""
        self.db = db
        self.bus = bus
        self.settings = settings
        self.catalogue = catalogue
        self.playbooks = playbooks
        self.clock = clock
        # Committed events wait here for the one publisher task: the request that made
        # them does not wait on Redis, and publish order stays commit order per replica.
        self._publish_queue_size = publish_queue_size
        # One outbox and publisher per event loop: a replica has one loop; tests and the
        # CLI may run several, in turn or in threads at once.
        self._outboxes: dict[
            asyncio.AbstractEventLoop, tuple[asyncio.Queue[bytes], asyncio.Task[None]]
        ] = {}
        self.claim_path: ClaimPath = claim_path or GeneralCommand()
        self.tokens: TokenLookup = tokens or DatabaseTokens(db, clock)
        self._cover_rounds: dict[asyncio.AbstractEventLoop, _CoverRounds] = {}

    async def run(self, actor: Actor, command: Callable[..., T], *args: Any) -> T:
        result, events = await to_thread.run_sync(self.run_sync, actor, command, *args)
        await self.publish(events)
        return result

    async def claim(
        self, actor: Actor, request_id: int, body: ClaimCreate, key: str
    ) -> tuple[ClaimPublic, bool]:
        """`claims.claim_request`, through the claim path when it answers by itself.
        Returns (claim, created)."""
        done = await self.claim_path.claim(actor, request_id, body, key, self.clock())
        if done is not None:
            claim, created, events = done
            await self.publish(events)
            commits = {
                (package["city_id"], package["resource"])
                for event in (events if created else ())
                if (package := event.data.get("package")) is not None
            }
            if commits:
                await self._judge_cover(commits)
            return claim, created
        row, created = await self.run(actor, claims.claim_request, request_id, body, key)
        return claim_public(row), created

    async def _judge_cover(self, commits: set[tuple[int, str]]) -> None:
        """A claim path committed package units: the cover of the requests those cities'
        rings hold is judged again (the general command does it in the claim's own
        transaction), in rounds shared by the claims of a moment."""
        loop = asyncio.get_running_loop()
        rounds = self._cover_rounds.get(loop)
        if rounds is None:
            kept = self._cover_rounds.items()
            self._cover_rounds = {lp: r for lp, r in kept if not lp.is_closed()}
            rounds = self._cover_rounds[loop] = _CoverRounds(self)
        await rounds.judge(commits)

    async def read(self, actor: Actor, query: Callable[..., T], *args: Any) -> T:
        """Run a read-only function over a command context, in a worker thread."""
        return await to_thread.run_sync(self.read_sync, actor, query, *args)

    def read_sync(self, actor: Actor, query: Callable[..., T], *args: Any) -> T:
        with self.db.read() as session:
            ctx = self._context(session, actor)
            return query(ctx, *args)

    def _context(self, session: Any, actor: Actor) -> CommandContext:
        return CommandContext(
            session=session,
            actor=actor,
            now=self.clock(),
            settings=self.settings,
            catalogue=self.catalogue,
            playbooks=self.playbooks(),
        )

    def run_sync(
        self, actor: Actor, command: Callable[..., T], *args: Any
    ) -> tuple[T, list[EventPublic]]:
        """The transaction itself, retried on a unique-key race or a deadlock."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self.db.write() as session:
                    ctx = self._context(session, actor)
                    result = command(ctx, *args)
                    session.flush()
                    events = [EventPublic.model_validate(e) for e in ctx.events]
                return result, events
            except IntegrityError as exc:
                # A concurrent transaction inserted the same unique key first; the
                # retry sees its row and answers as the command's rules say.
                if attempt == _ATTEMPTS:
                    raise ConcurrentChange() from exc
                log.info("integrity race on %s, retrying (%d)", command.__name__, attempt)
            except OperationalError as exc:
                code = getattr(exc.orig, "sqlstate", None)
                if code not in _RETRYABLE_SQLSTATES or attempt == _ATTEMPTS:
                    raise
                log.info("transaction %s aborted (%s), retrying", command.__name__, code)
        raise AssertionError("unreachable")

    async def publish(self, events: list[EventPublic]) -> None:
        """Hand committed events to the publisher without waiting for the bus."""
        observe_events(events)
        outbox = self._outbox_of_this_loop()
        for event in events:
            try:
                outbox.put_nowait(encode(event.model_dump(mode="json")))
            except asyncio.QueueFull:
                # The event is committed; replicas fill the gap from the events table.
                log.warning(
                    "publish queue full: event %s (incident %d seq %d) left to gap filling",
                    event.event_id,
                    event.incident_id,
                    event.seq,
                )

    def announce(self, message: bytes) -> None:
        """Publish a control message (`realtime.control`) behind the events committed
        before it, without waiting for the bus."""
        try:
            self._outbox_of_this_loop().put_nowait(message)
        except asyncio.QueueFull:
            log.warning("publish queue full: control message of %d bytes not sent", len(message))

    def _outbox_of_this_loop(self) -> asyncio.Queue[bytes]:
        loop = asyncio.get_running_loop()
        entry = self._outboxes.get(loop)
        if entry is None or entry[1].done():
            outbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=self._publish_queue_size)
            entry = (outbox, loop.create_task(self._publish_forever(outbox), name="publisher"))
            # Forget the loops that are gone (asyncio.run has cancelled their tasks).
            self._outboxes = {lp: e for lp, e in self._outboxes.items() if not lp.is_closed()}
            self._outboxes[loop] = entry
        return entry[0]

    async def _publish_forever(self, outbox: asyncio.Queue[bytes]) -> None:
        while True:
            # Whatever queued up while the last batch was on its way goes in one round trip.
            batch = [await outbox.get()]
            while len(batch) < _PUBLISH_BATCH and not outbox.empty():
                batch.append(outbox.get_nowait())
            try:
                await self.bus.publish_many(batch)
            except Exception as exc:
                stop_if_cancelled(exc)
                # The events are committed; replicas fill the gap from the events table.
                log.warning("publish of %d failed (%s); readers will fill the gap", len(batch), exc)
            finally:
                for _ in batch:
                    outbox.task_done()

    async def aclose(self, timeout_s: float = 5.0) -> None:
        """Publish what is queued (for at most `timeout_s`), then stop the publishers."""
        loop = asyncio.get_running_loop()
        entries, self._outboxes = self._outboxes, {}
        for owner, (_outbox, publisher) in entries.items():
            # Requests ran on another loop than the one closing (test clients do that):
            # that loop owns its task.
            if owner is not loop and not owner.is_closed():
                owner.call_soon_threadsafe(publisher.cancel)
        if loop not in entries:
            return
        outbox, publisher = entries[loop]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await outbox.join()
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher


class _CoverRounds:
    """Cover judged again after claims from packages (`escalation.escalate_after_commits`):
    the (city, resource) commits that arrive while a round runs go together in the next
    one, one transaction each; a claim is answered once the round holding its commit is
    done. A failed round is logged, not the claims' failure: they are committed, and
    the requests' timers still move them outward."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.pending: set[tuple[int, str]] = set()
        self.waiting: list[asyncio.Future[None]] = []
        self.running: asyncio.Task[None] | None = None

    async def judge(self, commits: set[tuple[int, str]]) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self.pending |= commits
        self.waiting.append(done)
        if self.running is None or self.running.done():
            self.running = loop.create_task(self._rounds(), name="cover-rounds")
        # A caller that goes away leaves the round to finish for the others.
        await asyncio.shield(done)

    async def _rounds(self) -> None:
        while self.pending:
            commits, waiting = sorted(self.pending), self.waiting
            self.pending, self.waiting = set(), []
            try:
                await self.executor.run(SYSTEM, escalation.escalate_after_commits, commits)
            except Exception:
                log.exception(
                    "cover after %d package commits not judged; the requests' timers still"
                    " move them outward",
                    len(commits),
                )
            finally:
                for done in waiting:
                    if not done.done():
                        done.set_result(None)
