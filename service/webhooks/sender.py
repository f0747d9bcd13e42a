"""Sends one signed request to a checked address.

The host is resolved here, every address is checked against the address policy, and the
connection goes to the address that was checked: the URL given to aiohttp holds the IP,
`Host` and TLS SNI (`server_hostname`, which aiohttp also verifies the certificate
against) hold the name. There is no second lookup for an attacker's DNS to answer
differently (rebinding). Redirects are never followed and proxies from the environment
are never used.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from yarl import URL

from service.domain.errors import Invalid
from service.domain.webhooks import AddressPolicy, Destination, IpAddress

EXCERPT_BYTES = 1000


class Resolver(Protocol):
    """Turns a host name into its addresses."""

    async def resolve(self, host: str, port: int) -> list[IpAddress]: ...


class SystemResolver:
    """The operating system's resolver, without blocking the event loop."""

    async def resolve(self, host: str, port: int) -> list[IpAddress]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise Invalid(f"{host} does not resolve: {exc.strerror}") from None
        found: list[IpAddress] = []
        for _family, _type, _proto, _name, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if address not in found:
                found.append(address)
        return found


@dataclass(frozen=True, slots=True)
class Reply:
    """What came back from one attempt (status None: no HTTP answer at all)."""

    status_code: int | None
    latency_ms: float
    error: str = ""
    excerpt: str = ""
    retry_after: str | None = None


class Sender:
    """Checks destinations and sends to them; an HTTP session per endpoint and address.

    aiohttp rather than httpx: httpx's layers (httpcore, anyio, h11 in Python) took about
    2 ms of CPU per delivery, most of the worker's time; aiohttp's C parser and leaner
    pool take a third of that."""

    def __init__(
        self,
        policy: AddressPolicy,
        resolver: Resolver | None = None,
        *,
        timeout_s: float = 10.0,
        lanes: int = 17,
    ) -> None:
        self.policy = policy
        self.resolver = resolver or SystemResolver()
        self.timeout_s = timeout_s
        self.lanes = lanes  # connections per endpoint: the worker's concurrency, and one
        self._sessions: dict[tuple[int, str], aiohttp.ClientSession] = {}

    async def check(self, url: str) -> tuple[Destination, IpAddress]:
        """The URL's destination and the address to call, or `Invalid` saying why not."""
        destination = self.policy.check_url(url)
        addresses = await self._addresses(destination)
        return destination, self.policy.check_addresses(destination, addresses)

    async def _addresses(self, destination: Destination) -> list[IpAddress]:
        try:
            return [ipaddress.ip_address(destination.host)]
        except ValueError:
            return await self.resolver.resolve(destination.host, destination.port)

    async def send(self, endpoint_id: int, url: str, headers: dict[str, str], body: bytes) -> Reply:
        """POST `body`; refused destinations and transport errors come back as a Reply."""
        started = time.perf_counter()
        try:
            destination, address = await self.check(url)
        except Invalid as exc:
            return Reply(None, _ms(started), error=f"refused: {exc.detail}"[:500])
        session = self._session(endpoint_id, address)
        ip = f"[{address}]" if address.version == 6 else str(address)
        server_hostname: str | None = None
        if destination.scheme == "https" and destination.host != str(address):
            server_hostname = destination.host
        try:
            async with session.post(
                URL(
                    f"{destination.scheme}://{ip}:{destination.port}{destination.target}",
                    encoded=True,
                ),
                data=body,
                headers={
                    **headers,
                    "Host": destination.host_header,
                    "Content-Type": "application/json",
                    "User-Agent": "aidmesh-webhooks/1",
                },
                allow_redirects=False,
                server_hostname=server_hostname,
            ) as response:
                excerpt = await _excerpt(response.content)
                status, retry_after = response.status, response.headers.get("retry-after")
        except TimeoutError:
            return Reply(None, _ms(started), error=f"no answer within {self.timeout_s:g} s")
        except (aiohttp.ClientError, OSError) as exc:
            return Reply(None, _ms(started), error=f"{type(exc).__name__}: {exc}"[:500])
        return Reply(status, _ms(started), excerpt=excerpt, retry_after=retry_after)

    def _session(self, endpoint_id: int, address: IpAddress) -> aiohttp.ClientSession:
        # A session per endpoint: a pooled connection is only ever reused for the same
        # endpoint, never for another name served from the same address.
        key = (endpoint_id, str(address))
        session = self._sessions.get(key)
        if session is None:
            for stale in [k for k in self._sessions if k[0] == endpoint_id]:
                old = self._sessions.pop(stale)
                asyncio.get_running_loop().create_task(old.close())
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self.lanes, use_dns_cache=False, enable_cleanup_closed=False
                ),
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                trust_env=False,
                auto_decompress=False,
                skip_auto_headers=("Accept-Encoding",),
            )
            self._sessions[key] = session
        return session

    async def forget(self, endpoint_id: int) -> None:
        for key in [k for k in self._sessions if k[0] == endpoint_id]:
            await self._sessions.pop(key).close()

    async def aclose(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


async def _excerpt(stream: aiohttp.StreamReader) -> str:
    """The start of the answer; the rest is never read (the connection is then closed)."""
    taken = bytearray()
    while len(taken) < EXCERPT_BYTES:
        chunk = await stream.read(EXCERPT_BYTES - len(taken))
        if not chunk:
            break
        taken.extend(chunk)
    return bytes(taken).decode("utf-8", errors="replace")
