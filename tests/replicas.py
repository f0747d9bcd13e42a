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
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from service.commands.admin import actor_for_token
from service.domain.actors import Actor
from service.executor import Executor, utc_now
from service.settings import Settings
from tests.support import (
    World,
    make_executor,
    missing,
    postgres_url,
    scratch_database,
    seed_world,
)

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"

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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _end(proc: subprocess.Popen[bytes] | None, *, grace_s: float = 10.0) -> None:
    """End one process we started, by its PID: SIGCONT (if paused), SIGTERM, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGCONT)
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def healthy(url: str) -> bool:
    """Whether the server at `url` answers /healthz now (a refused or timed-out
    connection means it is not up yet)."""
    try:
        return httpx.get(f"{url}/healthz", timeout=1.0, trust_env=False).is_success
    except httpx.HTTPError:
        return False


def _pings(client: redis.Redis) -> bool:
    """Whether redis-server answers PING now (an error means it is not listening yet)."""
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


class RedisServer:
    """A private redis-server without persistence, ours to kill, pause and restart."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        extra_args: tuple[str, ...] = (),
        config: Path | None = None,
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            missing("redis-server is not installed")
        self.binary = binary
        self.port = port or free_port()
        self.data_dir = data_dir
        self.log_path = data_dir / f"redis-{self.port}.log"
        self.extra_args = extra_args
        self.config = config  # a config file, read first (a Sentinel needs one to rewrite)
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, socket_timeout=2)

    def start(self, timeout_s: float = 10.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    *([str(self.config)] if self.config else []),
                    "--port",
                    str(self.port),
                    "--bind",
                    HOST,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.data_dir),
                    *self.extra_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.paused = False
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(host=HOST, port=self.port, socket_timeout=0.5)
        try:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited:\n{_tail(self.log_path)}")
                if _pings(client):
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer:\n{_tail(self.log_path)}")
                time.sleep(0.05)
        finally:
            client.close()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)
        if sig == signal.SIGSTOP:
            self.paused = True
        elif sig == signal.SIGCONT:
            self.paused = False
        else:
            self.proc.wait(timeout=10)

    def pause(self) -> None:
        self.kill(signal.SIGSTOP)

    def resume(self) -> None:
        self.kill(signal.SIGCONT)

    def restart(self) -> None:
        """kill -9, then a fresh empty server on the same port."""
        if self.proc is not None and self.proc.poll() is None:
            self.kill(signal.SIGKILL)
        self.start()

    def stop(self) -> None:
        _end(self.proc, grace_s=5)


SENTINEL_SERVICE = "aidmesh"


class SentinelDeployment:
    """A Redis master, one replica of it and `sentinels` Sentinels watching them, each a
    private process on a free loopback port. `url` is the `redis+sentinel://` URL
    aidmesh reads; `kill_master` is the failure the Sentinels are there for."""

    def __init__(
        self,
        data_dir: Path,
        *,
        sentinels: int = 3,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
    ) -> None:
        self.data_dir = data_dir
        self.master = RedisServer(data_dir / "master")
        self.replica = RedisServer(
            data_dir / "replica", extra_args=("--replicaof", HOST, str(self.master.port))
        )
        self.sentinels: list[RedisServer] = []
        for n in range(sentinels):
            port = free_port()
            config = data_dir / f"sentinel-{n}" / "sentinel.conf"
            self.sentinels.append(
                RedisServer(config.parent, port, config=config, extra_args=("--sentinel",))
            )
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms

    @property
    def url(self) -> str:
        hosts = ",".join(f"{HOST}:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SENTINEL_SERVICE}/0"

    def start(self, timeout_s: float = 20.0) -> None:
        self.master.start()
        self.replica.start()
        quorum = len(self.sentinels) // 2 + 1
        for sentinel in self.sentinels:
            assert sentinel.config is not None
            sentinel.config.parent.mkdir(parents=True, exist_ok=True)
            sentinel.config.write_text(
                f"sentinel monitor {SENTINEL_SERVICE} {HOST} {self.master.port} {quorum}\n"
                f"sentinel down-after-milliseconds {SENTINEL_SERVICE} {self.down_after_ms}\n"
                f"sentinel failover-timeout {SENTINEL_SERVICE} {self.failover_timeout_ms}\n"
                f"sentinel parallel-syncs {SENTINEL_SERVICE} 1\n"
            )
            sentinel.start()
        deadline = time.monotonic() + timeout_s
        while not self._settled():
            if time.monotonic() > deadline:
                raise RuntimeError(
                    "the Sentinels did not find the replica and each other:\n"
                    + "\n".join(_tail(s.log_path, 10) for s in self.sentinels)
                )
            time.sleep(0.1)

    def _settled(self) -> bool:
        """The replica is in sync, and every Sentinel knows it and the other Sentinels."""
        with contextlib.closing(self.replica.client()) as replica:
            if replica.info("replication").get("master_link_status") != "up":
                return False
        for sentinel in self.sentinels:
            with contextlib.closing(sentinel.client()) as client:
                state = client.sentinel_master(SENTINEL_SERVICE)
            if (
                int(state["num-slaves"]) < 1
                or int(state["num-other-sentinels"]) < len(self.sentinels) - 1
            ):
                return False
        return True

    def master_port(self) -> int | None:
        """The master's port as the Sentinels report it now (None if they cannot say)."""
        for sentinel in self.sentinels:
            if sentinel.proc is None or sentinel.proc.poll() is not None:
                continue
            with contextlib.closing(sentinel.client()) as client:
                try:
                    address = client.sentinel_get_master_addr_by_name(SENTINEL_SERVICE)
                except redis.RedisError:
                    continue
            if address:
                return int(address[1])
        return None

    def kill_master(self) -> RedisServer:
        """kill -9 the server that is master now; returns it."""
        port = self.master_port()
        victim = self.master if port == self.master.port else self.replica
        victim.kill(signal.SIGKILL)
        return victim

    def stop(self) -> None:
        for server in (*self.sentinels, self.replica, self.master):
            server.stop()


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
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "service.cli", "serve", "--port", str(self.port)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            if healthy(self.url):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not answer /healthz:\n{self.log_tail()}")
            time.sleep(0.1)

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
        _end(self.proc)

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

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
            actor = actor_for_token(session, self.token(role, city))
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
