"""Redis clients built from a URL: one server, or a Sentinel deployment that fails over.

Everything in aidmesh that talks to Redis (the bus, and through it the ticket store)
gets its client from `redis_from_url`. A single server is any URL redis-py reads
(`redis://`, `rediss://`, `unix://`). A Sentinel deployment has no URL form in
redis-py, so aidmesh reads the one other Python projects use:

    redis+sentinel://[[username]:password@]host[:port][,host[:port]...]/service_name[/db]
        [?sentinel_username=...&sentinel_password=...]

The hosts are the Sentinels (port 26379 when not given), `service_name` is the name
they monitor the master under, `db` the database number (0). The user name and
password are the data nodes' (master and replicas); `sentinel_username` and
`sentinel_password` authenticate to the Sentinels themselves, when they ask.

A Sentinel client asks the Sentinels for the master's address before each new
connection (redis-py's `SentinelConnectionPool`), so after a failover the next
connection goes to the promoted replica. Nothing here connects until first used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.connection import parse_url

SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379
_SENTINEL_OPTIONS = {"sentinel_username", "sentinel_password"}


@dataclass(frozen=True)
class SentinelTarget:
    """A parsed `redis+sentinel://` URL."""

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None


def is_sentinel_url(url: str) -> bool:
    return url.partition("://")[0].lower() == SENTINEL_SCHEME


def parse_sentinel_url(url: str) -> SentinelTarget:
    """The Sentinels, service name, database and credentials of a `redis+sentinel://` URL.

    Raises ValueError naming what is wrong (the URL is never echoed: it may hold a password).
    """
    scheme, _, rest = url.partition("://")
    if scheme.lower() != SENTINEL_SCHEME:
        raise ValueError(f"a Sentinel URL starts with {SENTINEL_SCHEME}://")
    parts = urlsplit(f"{SENTINEL_SCHEME}://{rest}")
    userinfo, at, hostlist = parts.netloc.rpartition("@")
    if not at:
        userinfo = ""
    username, password = _credentials(userinfo)
    sentinels = tuple(_host_port(item) for item in hostlist.split(",") if item.strip())
    if not sentinels:
        raise ValueError("a Sentinel URL names at least one Sentinel host")
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2:
        raise ValueError(
            "a Sentinel URL's path is /service_name or /service_name/db, e.g. /mymaster/0"
        )
    db = 0
    if len(path) == 2:
        if not path[1].isdigit():
            raise ValueError(f"the database in a Sentinel URL is a number, not {path[1]!r}")
        db = int(path[1])
    options = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = sorted(set(options) - _SENTINEL_OPTIONS)
    if unknown:
        raise ValueError(
            f"unknown Sentinel URL option(s) {', '.join(unknown)};"
            f" known: {', '.join(sorted(_SENTINEL_OPTIONS))}"
        )
    return SentinelTarget(
        sentinels=sentinels,
        service_name=unquote(path[0]),
        db=db,
        username=username,
        password=password,
        sentinel_username=options.get("sentinel_username") or None,
        sentinel_password=options.get("sentinel_password") or None,
    )


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    if not userinfo:
        return None, None
    user, colon, secret = userinfo.partition(":")
    return (unquote(user) or None), (unquote(secret) if colon else None)


def _host_port(item: str) -> tuple[str, int]:
    item = item.strip()
    if item.startswith("["):  # [::1]:26379
        host, _, tail = item[1:].partition("]")
        port_text = tail.removeprefix(":")
    else:
        host, _, port_text = item.partition(":")
    if not host:
        raise ValueError("a Sentinel URL has an empty host in its host list")
    if not port_text:
        return host, SENTINEL_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"the Sentinel host {host!r} has an invalid port {port_text!r}")
    return host, int(port_text)


def database_number(url: str) -> int:
    """The Redis database number a URL names (0 when it names none)."""
    if is_sentinel_url(url):
        return parse_sentinel_url(url).db
    db: int = parse_url(url).get("db", 0)  # type: ignore[no-untyped-call]
    return db


def describe(url: str) -> str:
    """The URL without its credentials, for logs."""
    if is_sentinel_url(url):
        target = parse_sentinel_url(url)
        hosts = ",".join(f"{h}:{p}" for h, p in target.sentinels)
        return f"Sentinel {hosts} service {target.service_name} db {target.db}"
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"


def redis_from_url(
    url: str,
    *,
    max_connections: int = 32,
    pool_timeout_s: float = 2.0,
    socket_timeout_s: float | None = 2.0,
    socket_connect_timeout_s: float = 2.0,
    retries: int = 3,
    health_check_interval_s: float = 0,
) -> Redis:
    """A client of the server (or, for a Sentinel URL, of the current master) at `url`.

    Its pool blocks up to `pool_timeout_s` for a free connection (redis-py's default
    pool raises at once when full). A command that loses its connection is retried
    `retries` times on a fresh one, 50 ms to 0.5 s apart, which rides out a failover's
    first moments without hiding a longer outage from the caller.
    """
    retry = (
        Retry(ExponentialBackoff(cap=0.5, base=0.05), retries) if retries else Retry(NoBackoff(), 0)
    )
    options: dict[str, Any] = {
        "max_connections": max_connections,
        "timeout": pool_timeout_s,
        "socket_timeout": socket_timeout_s,
        "socket_connect_timeout": socket_connect_timeout_s,
        "health_check_interval": health_check_interval_s,
        "retry": retry,
    }
    if not is_sentinel_url(url):
        return Redis.from_pool(BlockingConnectionPool.from_url(url, **options))
    target = parse_sentinel_url(url)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        list(target.sentinels),
        sentinel_kwargs={
            # A Sentinel that does not answer is skipped for the next one, at once.
            "socket_timeout": socket_timeout_s or 2.0,
            "socket_connect_timeout": socket_connect_timeout_s,
            "username": target.sentinel_username,
            "password": target.sentinel_password,
            "retry": Retry(NoBackoff(), 0),
        },
    )
    client: Redis = sentinel.master_for(
        target.service_name,
        redis_class=_SentinelMaster,
        connection_pool_class=_BlockingSentinelPool,
        db=target.db,
        username=target.username,
        password=target.password,
        **options,
    )
    return client


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool (master discovery per connection) with the blocking pool's wait."""


class _SentinelMaster(Redis):
    """The master's client; closing it also closes its connections to the Sentinels."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        manager = getattr(self.connection_pool, "sentinel_manager", None)
        if isinstance(manager, Sentinel):
            await manager.aclose()
