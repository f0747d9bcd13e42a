"""aidmesh replicas and a private redis-server as real subprocesses, for realtime and fault tests.

A `Cluster` is one scratch PostgreSQL database with the seeded world, a Redis
(the one at REDIS_URL, or a private `redis-server` that a test may kill, pause
or restart), and N replicas started as `python -m service.cli serve --port N`.
Every process is started by this module and ended by its PID when the
cluster's context (or the fixture built on it) exits, also on failure.

Everything binds to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.commands.admin import actor_for_token
from service.domain.actors import Actor
from service.executor import Executor, utc_now
from service.settings import Settings
from tests.procs import (
    HOST,
    RedisServer,
    end,
    free_port,
    rss_bytes,
    start,
    tail,
    wait_until_healthy,
)
from tests.support import (
    World,
    make_executor,
    missing,
    postgres_url,
    scratch_database,
    seed_world,
)

ROOT = Path(__file__).resolve().parent.parent

# What every replica of a test cluster runs with, unless a test says otherwise.
# The gap poll is short so that a missed publish shows up within a second; the
# pool is small so that two or three replicas stay well inside PostgreSQL's
# max_connections; per-token rate limits are out of the way of load tests
# (they have tests of their own).
REPLICA_ENV = {
    "AIDMESH_GAP_POLL_INTERVAL_S": "0.2",
    "AIDMESH_DB_POOL_SIZE": "8",
    "AIDMESH_LOG_LEVEL": "warning",
    "AIDMESH_RATE_LIMIT_PER_S": "100000",
    "AIDMESH_RATE_LIMIT_BURST": "100000",
}


class Replica:
    """One `aidmesh serve` process on its own port."""

    def __init__(
        self,
        name: str,
        *,
        database_url: str,
        redis_url: str,
        data_dir: Path,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.name = name
        self.database_url = database_url
        self.redis_url = redis_url
        self.data_dir = data_dir
        self.env = dict(env or {})
        self.port = port or free_port()
        self.log_path = data_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/ws"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def spawn(self) -> None:
        """Start the process without waiting for it (see `wait_ready`)."""
        assert not self.alive(), f"{self.name} is already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            **REPLICA_ENV,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "AIDMESH_DATA_DIR": str(self.data_dir),
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        with open(self.log_path, "ab") as log:
            log.write(f"\n--- start {self.starts + 1} of {self.name} ---\n".encode())
        self.proc = start(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(self.port)],
            self.log_path,
            env=env,
            cwd=ROOT,
        )
        self.starts += 1

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        assert self.proc is not None
        wait_until_healthy(self.proc, self.url, self.log_path, timeout_s=timeout_s, name=self.name)

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig`; for the ones that end the process, wait until it is gone."""
        assert self.proc is not None
        os.kill(self.proc.pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            self.proc.wait(timeout=15)

    def restart(self) -> None:
        if self.alive():
            self.stop()
        self.start()

    def stop(self) -> None:
        end(self.proc)

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def metrics(self) -> dict[str, float]:
        """The replica's Prometheus samples without labels, by name."""
        text = httpx.get(f"{self.url}/metrics", timeout=5.0, trust_env=False).text
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if not line or line.startswith("#") or "{" in line:
                continue
            name, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                samples[name] = float(value)
        return samples


@dataclass
class Cluster:
    """Replicas sharing one database and one Redis, and the seeded world behind them."""

    tmp: Path
    database_url: str
    redis_url: str
    world: World
    redis_server: RedisServer | None
    replicas: list[Replica] = field(default_factory=list)
    _stack: ExitStack = field(default_factory=ExitStack)

    @property
    def executor(self) -> Executor:
        """Commands straight against the database. Its bus is an in-process bus with no
        listener: what it commits is never published (a crash between commit and publish)."""
        return self.world.executor

    @property
    def city(self) -> dict[str, int]:
        return self.world.city_ids

    def token(self, role: str, city: str | None = None) -> str:
        return self.world.token(role, city)

    def headers(self, role: str, city: str | None = None) -> dict[str, str]:
        return self.world.headers(role, city)

    def actor(self, role: str, city: str | None = None) -> Actor:
        with self.executor.db.read() as session:
            actor = actor_for_token(session, self.token(role, city), self.executor.clock())
        assert actor is not None
        return actor

    def add_replica(self, name: str | None = None, *, start: bool = True, **env: str) -> Replica:
        replica = Replica(
            name or f"replica-{len(self.replicas)}",
            database_url=self.database_url,
            redis_url=self.redis_url,
            data_dir=self.tmp / "replicas",
            env=env,
        )
        self.replicas.append(replica)
        self._stack.callback(replica.stop)
        if start:
            replica.start()
        return replica

    def start_replicas(self, count: int, **env: str) -> list[Replica]:
        """Start `count` replicas at once (they migrate under an advisory lock)."""
        started = [self.add_replica(start=False, **env) for _ in range(count)]
        for replica in started:
            replica.spawn()
        for replica in started:
            replica.wait_ready()
        return started

    def logs(self, lines: int = 30) -> str:
        return "\n".join(f"== {r.name}\n{r.log_tail(lines)}" for r in self.replicas)


def require_services() -> str:
    """The PostgreSQL URL to make scratch databases from; skips when none is configured."""
    url = postgres_url()
    if url is None:
        missing("replica tests need DATABASE_URL pointing at PostgreSQL")
    return url


@contextmanager
def cluster(
    tmp: Path,
    *,
    replicas: int = 2,
    private_redis: bool = False,
    redis_url: str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Cluster]:
    """A scratch database with the seeded world, a Redis, and `replicas` running replicas.

    The Redis is `redis_url` when given, else a redis-server of our own when
    `private_redis` (or when REDIS_URL is unset), else the one at REDIS_URL."""
    require_services()
    with ExitStack() as stack:
        database_url = stack.enter_context(scratch_database("postgresql", tmp))
        redis_server = None
        given, redis_url = redis_url, redis_url or os.environ.get("REDIS_URL")
        if given is None and (private_redis or not redis_url):
            redis_server = RedisServer(tmp / "redis")
            stack.callback(redis_server.stop)
            redis_server.start()
            redis_url = redis_server.url
        assert redis_url is not None
        executor = make_executor(Settings(database_url=database_url), utc_now)  # type: ignore[arg-type]
        stack.callback(executor.db.dispose)
        world = seed_world(executor)
        built = Cluster(tmp, database_url, redis_url, world, redis_server)
        stack.enter_context(built._stack)
        if replicas:
            built.start_replicas(replicas, **(env or {}))
        yield built


def cluster_fixture(
    *, replicas: int = 2, private_redis: bool = False, **env: str
) -> Callable[..., Any]:
    """A module-scoped fixture: `cluster = cluster_fixture(replicas=2)` in a test module."""

    @pytest.fixture(scope="module")
    def _cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
        with cluster(
            tmp_path_factory.mktemp("cluster"),
            replicas=replicas,
            private_redis=private_redis,
            env=env,
        ) as built:
            yield built

    return _cluster


# Bound on any wait for another thread of a race; far above what a healthy run needs.
STEP_WAIT_S = 30.0


_CLAIM_MOVE = re.compile(r"/api/v1/claims/\d+/status")


def http_step(
    client: httpx.Client, start: threading.Barrier, url: str, step: tuple[str, str, object]
) -> str:
    """One REST step of a race, sent once every step's thread is at `start`: "ok",
    "refused" (409) or what went wrong. A claim carries a fresh idempotency key."""
    method, path, body = step
    headers = {}
    if path.endswith("/claims"):
        headers["Idempotency-Key"] = uuid.uuid4().hex
    start.wait(timeout=STEP_WAIT_S)
    # A step whose answer was lost on the way (a connection the client's pool reused as
    # the server closed it) is sent again when that cannot count twice: a claim with the
    # same key, as the README tells clients to (the service replays the first answer), a
    # claim's move (a repeat finds the claim moved: 409) and a roster edit (it sets values).
    resend = "Idempotency-Key" in headers or method == "PATCH" or bool(_CLAIM_MOVE.fullmatch(path))
    for attempt in range(3 if resend else 1):
        try:
            r = client.request(method, url + path, json=body, headers=headers)
            break
        except httpx.TransportError as exc:
            if attempt == 2 or not resend:
                return f"{type(exc).__name__}: {exc}"
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
    if r.status_code in (200, 201):
        return "ok"
    if r.status_code == 409:
        return "refused"
    return f"{r.status_code}: {r.text[:200]}"
