"""Sends one signed request to a checked address.

The host is resolved here, every address is checked against the address policy, and the
connection goes to the address that was checked: the URL given to httpx holds the IP,
`Host` and TLS SNI (`sni_hostname`, which httpcore also verifies the certificate
against) hold the name. There is no second lookup for an attacker's DNS to answer
differently (rebinding). Redirects are never followed and proxies from the environment
are never used.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import httpx

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
    """Checks destinations and sends to them; HTTP clients per endpoint and address."""

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
        self._clients: dict[tuple[int, str], _Lanes] = {}

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
        lanes = self._lanes(endpoint_id, address)
        ip = f"[{address}]" if address.version == 6 else str(address)
        t = self.timeout_s
        extensions: dict[str, object] = {
            "timeout": {"connect": t, "read": t, "write": t, "pool": t}
        }
        if destination.scheme == "https" and destination.host != str(address):
            extensions["sni_hostname"] = destination.host
        request = httpx.Request(
            "POST",
            f"{destination.scheme}://{ip}:{destination.port}{destination.target}",
            headers={
                **headers,
                "Host": destination.host_header,
                "Content-Type": "application/json",
                "User-Agent": "aidmesh-webhooks/1",
            },
            content=body,
            extensions=extensions,
        )
        try:
            async with lanes.lend() as client, asyncio.timeout(self.timeout_s):
                response = await client.send(request, stream=True)
                try:
                    excerpt = await _excerpt(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            return Reply(None, _ms(started), error=f"no answer within {self.timeout_s:g} s")
        except httpx.HTTPError as exc:
            return Reply(None, _ms(started), error=f"{type(exc).__name__}: {exc}"[:500])
        return Reply(
            response.status_code,
            _ms(started),
            excerpt=excerpt,
            retry_after=response.headers.get("retry-after"),
        )

    def _lanes(self, endpoint_id: int, address: IpAddress) -> _Lanes:
        # Clients per endpoint: a pooled connection is only ever reused for the same
        # endpoint, never for another name served from the same address.
        key = (endpoint_id, str(address))
        lanes = self._clients.get(key)
        if lanes is None:
            for stale in [k for k in self._clients if k[0] == endpoint_id]:
                old = self._clients.pop(stale)
                asyncio.get_running_loop().create_task(old.aclose())
            lanes = _Lanes(self.lanes, self.timeout_s)
            self._clients[key] = lanes
        return lanes

    async def forget(self, endpoint_id: int) -> None:
        for key in [k for k in self._clients if k[0] == endpoint_id]:
            await self._clients.pop(key).aclose()

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


class _Lanes:
    """Up to `size` clients of one connection each, lent to one request at a time.

    One pool of many connections costs every request a scan of all of them (httpcore
    checks each idle connection's socket before assigning one): at hundreds of
    deliveries a second that scan was a third of the sender's time. A client of one
    connection, lent whole, assigns in constant time; the worker's concurrency bounds
    how many are lent at once."""

    def __init__(self, size: int, timeout_s: float) -> None:
        self.size = size
        self.timeout_s = timeout_s
        self.idle: list[httpx.AsyncClient] = []
        self.all: list[httpx.AsyncClient] = []
        self.freed = asyncio.Condition()

    def _new(self) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            timeout=self.timeout_s,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )
        self.all.append(client)
        return client

    @contextlib.asynccontextmanager
    async def lend(self) -> AsyncIterator[httpx.AsyncClient]:
        if self.idle:
            client = self.idle.pop()
        elif len(self.all) < self.size:
            client = self._new()
        else:
            async with self.freed:
                await self.freed.wait_for(lambda: bool(self.idle))
                client = self.idle.pop()
        try:
            yield client
        finally:
            self.idle.append(client)
            async with self.freed:
                self.freed.notify()

    async def aclose(self) -> None:
        clients, self.all, self.idle = self.all, [], []
        for client in clients:
            await client.aclose()


async def _excerpt(response: httpx.Response) -> str:
    taken = bytearray()
    async for chunk in response.aiter_bytes():
        taken.extend(chunk)
        if len(taken) >= EXCERPT_BYTES:
            break
    return bytes(taken[:EXCERPT_BYTES]).decode("utf-8", errors="replace")


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
