"""The chaos runner of the D1-D5 fault tests: watchers subscribed to a few incidents on
a cluster's replicas, writes over REST, a fault schedule applied meanwhile, and what
each watcher received checked against the events table by the shared history checker
(nothing lost, nothing foreign, duplicates and reorderings counted).

A test opens a `ChaosRun` on its cluster (who watches is a `Watchers`), and either
hands `run_under` a schedule of `Fault`s to apply while a number of writes go on, or
drives its own steps with the run's `writes`, `load`, `apply` and `settle`. Every
fault applied is logged with the time it took effect, so a test can look at what its
clients received in between (see `tests.history.live_pause_s`).
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType

from tests.history import History, Summary, check_against_table, load_truth
from tests.procs import RedisServer
from tests.realtime.live_client import (
    LiveClient,
    Rest,
    caught_up,
    produce,
    setup_incidents,
    wait_until,
)
from tests.replicas import Cluster, Replica


@dataclass(frozen=True)
class Watchers:
    """Who watches: `per_replica` observers starting on each of the cluster's replicas."""

    per_replica: int = 3
    # After a close, reconnect to the next replica of the list (else to the same one).
    rotate: bool = False
    # Every n-th watcher signs in with a single-use ticket instead of its token (0: none).
    ticket_every: int = 0
    # Record each event's delay from its `occurred_at` to its arrival.
    record_latency: bool = False


@dataclass(frozen=True)
class Fault:
    """One step of a fault schedule: wait `after_s` from the step before, then `action`.

    `action` returns what it hit (a replica's or a client's name), or None when it
    found nothing to hit (the step is then not logged). A blocking action (a process
    to start or kill) runs in a thread; one that touches the runner's connections
    runs on the event loop."""

    after_s: float
    what: str
    action: Callable[[], str | None]
    blocking: bool = True


@dataclass(frozen=True)
class Applied:
    what: str
    target: str
    at: float  # time.monotonic() when the action returned


class ChaosRun:
    """One run on a cluster: open it with `async with`; it declares `incidents` incidents
    (each with a big request to claim from), starts the watchers and waits until every
    one is subscribed. On exit it stops any load and every client.

    Writes and watchers go to `replicas` (default: the cluster's replicas now)."""

    def __init__(
        self,
        cluster: Cluster,
        tag: str,
        *,
        incidents: int = 2,
        watchers: Watchers | None = None,
        replicas: Sequence[Replica] | None = None,
    ) -> None:
        self.cluster = cluster
        self.replicas = list(replicas or cluster.replicas)
        self.tag = tag
        self.incident_count = incidents
        self.watchers = watchers or Watchers()
        self.history = History()
        self.rest = Rest([r.url for r in self.replicas], self.history)
        self.manager = cluster.headers("manager", "nairobi")
        self.responder = cluster.headers("responder", "thika")
        self.incidents: dict[int, int] = {}  # incident id -> its big open request
        self.clients: list[LiveClient] = []
        self.applied: list[Applied] = []
        self._load: asyncio.Task[None] | None = None
        self._load_stop = asyncio.Event()

    async def __aenter__(self) -> ChaosRun:
        try:
            self.incidents = await setup_incidents(
                self.rest, self.manager, self.incident_count, self.tag
            )
            self.clients = [client.start() for client in self._make_clients()]
            live = await wait_until(lambda: all(c.live.is_set() for c in self.clients), 15)
            assert live, "not every watcher subscribed"
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the background load and every client; close the REST client."""
        self._load_stop.set()
        if self._load is not None:
            self._load.cancel()
            await asyncio.gather(self._load, return_exceptions=True)
        for client in self.clients:
            await client.stop()
        await self.rest.aclose()

    def _make_clients(self) -> Iterator[LiveClient]:
        spec = self.watchers
        replicas = self.replicas
        scopes = [f"incident:{i}" for i in self.incidents]
        token = self.cluster.token("observer", "thika")
        index = 0
        for k, replica in enumerate(replicas):
            # Each starts on its own replica and, rotating, goes on to the next ones.
            urls = [replicas[(k + j) % len(replicas)].ws_url for j in range(len(replicas))]
            for n in range(spec.per_replica):
                yield LiveClient(
                    f"{self.tag}-{replica.name}-{n}",
                    urls,
                    token,
                    scopes,
                    self.history,
                    use_ticket=bool(spec.ticket_every) and index % spec.ticket_every == 0,
                    rotate=spec.rotate,
                    record_latency=spec.record_latency,
                )
                index += 1

    # Load ---------------------------------------------------------------------------

    async def writes(self, count: int, *, workers: int = 2, pause_s: float = 0.0) -> None:
        """`count` writes over the incidents: claims of one unit and new requests."""
        await produce(
            self.rest,
            self.manager,
            self.responder,
            self.incidents,
            count,
            workers=workers,
            pause_s=pause_s,
        )

    def load(self, *, batch: int = 10, workers: int = 2, pause_s: float = 0.02) -> None:
        """Writes in batches of `batch`, in the background until `stop_load`."""
        assert self._load is None, "the load is already running"

        async def batches() -> None:
            while not self._load_stop.is_set():
                await self.writes(batch, workers=workers, pause_s=pause_s)

        self._load = asyncio.ensure_future(batches())

    async def stop_load(self) -> None:
        """Let the batch under way finish, then stop the background writes."""
        self._load_stop.set()
        if self._load is not None:
            await self._load

    # Faults -------------------------------------------------------------------------

    async def apply(self, schedule: Iterable[Fault], until: asyncio.Event | None = None) -> None:
        """Apply each fault in turn (a generator is read lazily), until the schedule ends
        or `until` is set."""
        for fault in schedule:
            if until is not None and until.is_set():
                return
            await asyncio.sleep(fault.after_s)
            if until is not None and until.is_set():
                return
            if fault.blocking:
                target = await asyncio.to_thread(fault.action)
            else:
                target = fault.action()
            if target is not None:
                self.applied.append(Applied(fault.what, target, time.monotonic()))

    def applied_at(self, what: str) -> list[float]:
        """When each applied fault of kind `what` took effect (time.monotonic())."""
        return [a.at for a in self.applied if a.what == what]

    async def run_under(
        self, schedule: Iterable[Fault], writes: int, *, workers: int = 2, pause_s: float = 0.0
    ) -> float:
        """Apply `schedule` while `writes` writes go on; returns the seconds both took."""
        started = time.monotonic()
        await asyncio.gather(
            self.apply(schedule), self.writes(writes, workers=workers, pause_s=pause_s)
        )
        return time.monotonic() - started

    # The outcome --------------------------------------------------------------------

    async def settle(self, timeout_s: float = 20.0) -> None:
        """Wait until every watcher has every event the table holds for the incidents,
        then a little longer, so that a late duplicate would be counted."""
        truth = load_truth(self.cluster.database_url, self.incidents)
        reached = await caught_up(self.clients, truth.last_seq, timeout_s)
        assert reached, self.cluster.logs()
        await asyncio.sleep(0.5)

    def check(self) -> Summary:
        """The shared checker's verdict on what every watcher received."""
        return check_against_table(self.history, self.cluster.database_url)


@dataclass
class Outcome:
    """What a scheduled run leaves for its test's assertions and figures."""

    history: History
    summary: Summary
    took_s: float
    applied: list[Applied] = field(default_factory=list)

    def targets(self, what: str) -> list[str]:
        """What each applied fault of kind `what` hit, in order."""
        return [a.target for a in self.applied if a.what == what]


def run_chaos(
    cluster: Cluster,
    tag: str,
    schedule: Iterable[Fault],
    *,
    writes: int,
    workers: int = 2,
    pause_s: float = 0.0,
    incidents: int = 2,
    watchers: Watchers | None = None,
    settle_s: float = 20.0,
) -> Outcome:
    """The whole of a scheduled run: watchers, the schedule applied while `writes` writes
    go on, every watcher caught up, and the checker's summary."""

    async def scenario() -> tuple[ChaosRun, float]:
        async with ChaosRun(cluster, tag, incidents=incidents, watchers=watchers) as run:
            took = await run.run_under(schedule, writes, workers=workers, pause_s=pause_s)
            await run.settle(settle_s)
        return run, took

    run, took = asyncio.run(scenario())
    return Outcome(run.history, run.check(), took, run.applied)


# Schedules ----------------------------------------------------------------------------


def _kill_replica(replica: Replica) -> str:
    replica.kill(signal.SIGKILL)
    return replica.name


def _start_replica(replica: Replica) -> str:
    replica.start()
    return replica.name


def replica_kills(
    replicas: Sequence[Replica], count: int, *, every_s: float, down_s: float
) -> Iterator[Fault]:
    """`count` times, in turn over the replicas: kill -9 one, and start it again."""
    for n in range(count):
        victim = replicas[n % len(replicas)]
        yield Fault(every_s, "kill -9", partial(_kill_replica, victim))
        yield Fault(down_s, "start", partial(_start_replica, victim))


def _restart_redis(server: RedisServer) -> str:
    server.restart()
    return f"redis:{server.port}"


def redis_restarts(server: RedisServer, count: int, *, every_s: float) -> Iterator[Fault]:
    """`count` times: kill -9 the Redis, then a fresh empty one on the same port."""
    for _ in range(count):
        yield Fault(every_s, "redis restart", partial(_restart_redis, server))


def _signal_redis(server: RedisServer, sig: signal.Signals) -> str:
    server.kill(sig)
    return f"redis:{server.port}"


def redis_signal(server: RedisServer, sig: signal.Signals, *, after_s: float = 0.0) -> Fault:
    """Send the Redis `sig` (SIGSTOP freezes it, SIGCONT thaws it) after `after_s`."""
    return Fault(after_s, sig.name, partial(_signal_redis, server, sig))


def client_drops(
    clients: Sequence[LiveClient], count: int, *, seed: int, gap_s: tuple[float, float]
) -> Iterator[Fault]:
    """A random gap apart, until `count` clients were hit: cut one live client's TCP
    connection without a closing handshake (a step that finds none live hits nothing)."""
    rng = random.Random(seed)
    hits = 0

    def drop() -> str | None:
        nonlocal hits
        live = [c for c in clients if c.live.is_set()]
        if not live:
            return None
        victim = rng.choice(live)
        victim.drop()
        hits += 1
        return victim.name

    while hits < count:
        yield Fault(rng.uniform(*gap_s), "drop", drop, blocking=False)
