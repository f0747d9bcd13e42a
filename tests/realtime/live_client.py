"""A websocket client of aidmesh for tests, and a REST load generator; both log into a History.

`LiveClient` authenticates (first-message token, or a single-use `?ticket=`),
subscribes with `since` = the last seq it saw per incident, handles `reset`
(takes the snapshot's `last_seq`), and after any close reconnects, by default
to the next URL of its list, with its last seqs. Everything it receives goes
into its `ClientLog`.

`Rest` sends writes round-robin over replicas and logs each one as ok, failed
(never reached a server, or refused) or unknown (sent, no answer), retrying a
claim on another replica with the same Idempotency-Key when the answer is unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException

from tests.history import FAILED, OK, UNKNOWN, ClientLog, History, Write

API = "/api/v1"


def http_base(ws_url: str) -> str:
    """ws://host:port/ws -> http://host:port"""
    return "http" + ws_url.removeprefix("ws").removesuffix("/ws")


async def open_ws(url: str, **kwargs: Any) -> ClientConnection:
    """A plain loopback websocket connection: no proxy, no compression, no client pings."""
    options: dict[str, Any] = {
        "proxy": None,
        "compression": None,
        "open_timeout": 10,
        "close_timeout": 2,
        "ping_interval": None,
        "max_size": 16 * 1024 * 1024,
    }
    options.update(kwargs)
    return await connect(url, **options)


async def ws_ticket(http: httpx.AsyncClient, base: str, token: str) -> str:
    r = await http.post(f"{base}{API}/ws-ticket", headers={"Authorization": f"Bearer {token}"})
    r.raise_for_status()
    ticket: str = r.json()["ticket"]
    return ticket


async def wait_until(predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step_s)
    return True


class LiveClient:
    def __init__(
        self,
        name: str,
        urls: Sequence[str],
        token: str,
        scopes: Sequence[str],
        history: History,
        *,
        use_ticket: bool = False,
        rotate: bool = True,
        reconnect_delay_s: float = 0.05,
        record_latency: bool = False,
        latency_of: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        self.name = name
        self.urls = list(urls)
        self.token = token
        self.scopes = list(scopes)
        self.log: ClientLog = history.client(name)
        self.use_ticket = use_ticket
        self.rotate = rotate
        self.reconnect_delay_s = reconnect_delay_s
        self.record_latency = record_latency
        self.latency_of = latency_of
        self.last: dict[int, int] = {}
        self.errors: list[str] = []  # connection failures, for the report
        self.error_frames: list[dict[str, Any]] = []
        self.ws: ClientConnection | None = None
        self.live = asyncio.Event()  # set while subscribed
        self.online = asyncio.Event()  # cleared while the client stays away on purpose
        self.online.set()
        self.reset_messages: list[dict[str, Any]] = []
        self._index = 0
        self._stop = False
        self._dropped = False
        self._task: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._refs = itertools.count(1)
        self._http = httpx.AsyncClient(trust_env=False, timeout=10.0)

    # Lifecycle -------------------------------------------------------------------

    def start(self) -> LiveClient:
        self._task = asyncio.get_running_loop().create_task(self.run(), name=self.name)
        return self

    async def stop(self) -> None:
        self._stop = True
        ws = self.ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 3)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._http.aclose()

    def drop(self) -> None:
        """Cut the TCP connection without a closing handshake; the run loop reconnects."""
        ws = self.ws
        if ws is not None:
            self.live.clear()
            self._dropped = True
            ws.transport.abort()

    def go_offline(self) -> None:
        """Drop the connection and stay away until `go_online`."""
        self.online.clear()
        self.drop()

    def go_online(self) -> None:
        self.online.set()

    @property
    def url(self) -> str:
        return self.urls[self._index % len(self.urls)]

    async def run(self) -> None:
        failures = 0
        while not self._stop:
            await self.online.wait()
            try:
                await self._session()
                failures = 0
            except (OSError, TimeoutError, WebSocketException, httpx.HTTPError) as exc:
                if not self._dropped:
                    failures += 1
                    self.errors.append(f"{self.url}: {type(exc).__name__}: {exc}")
            finally:
                self._dropped = False
                self.ws = None
                self.live.clear()
                for future in self._pending.values():
                    if not future.done():
                        future.set_exception(ConnectionError("connection closed"))
                self._pending.clear()
            if self._stop:
                return
            if self.rotate:
                self._index += 1
            delay = self.reconnect_delay_s * min(failures, 10) if failures else 0.0
            await asyncio.sleep(delay + random.uniform(0, self.reconnect_delay_s))

    async def _session(self) -> None:
        url = self.url
        if self.use_ticket:
            url += "?ticket=" + await ws_ticket(self._http, http_base(self.url), self.token)
        async with await open_ws(url) as ws:
            self.ws = ws
            self.log.connects += 1
            if not self.use_ticket:
                await ws.send(orjson.dumps({"op": "auth", "token": self.token}).decode())
            welcome = orjson.loads(await ws.recv())
            if welcome.get("type") != "welcome":
                raise ConnectionError(f"expected welcome, got {welcome}")
            since = {str(i): s for i, s in self.last.items()}
            await ws.send(
                orjson.dumps(
                    {"op": "subscribe", "scopes": self.scopes, "since": since, "ref": "sub"}
                ).decode()
            )
            try:
                async for raw in ws:
                    self._on_message(orjson.loads(raw))
            finally:
                self.log.closes.append((ws.close_code, ws.close_reason or ""))

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "event":
            event = message["event"]
            incident_id, seq = int(event["incident_id"]), int(event["seq"])
            latency = None
            if self.record_latency and (self.latency_of is None or self.latency_of(event)):
                at = datetime.fromisoformat(event["occurred_at"]).timestamp()
                latency = time.time() - at
            self.log.event(incident_id, seq, event["event_id"], latency)
            self.last[incident_id] = max(self.last.get(incident_id, 0), seq)
        elif kind == "reset":
            incident_id, last = int(message["incident_id"]), int(message["last_seq"])
            self.log.reset(incident_id, last)
            self.reset_messages.append(message)
            self.last[incident_id] = last
        elif kind == "subscribed":
            self.log.subscribed += 1
            self.live.set()
        elif kind in ("ack", "error"):
            future = self._pending.pop(str(message.get("ref")), None)
            if future is not None and not future.done():
                future.set_result(message)
            elif kind == "error":
                self.error_frames.append(message)

    async def command(self, message: dict[str, Any], timeout_s: float = 15.0) -> dict[str, Any]:
        """Send a command op over the live connection and wait for its ack or error."""
        ws = self.ws
        assert ws is not None, f"{self.name} is not connected"
        ref = f"{self.name}-{next(self._refs)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ref] = future
        try:
            await ws.send(orjson.dumps({**message, "ref": ref}).decode())
        except BaseException:
            self._pending.pop(ref, None)  # nobody will wait for its answer
            raise
        return await asyncio.wait_for(future, timeout_s)

    def has(self, incident_id: int, seq: int) -> bool:
        return self.last.get(incident_id, 0) >= seq


async def caught_up(
    clients: Sequence[LiveClient], last_seqs: dict[int, int], timeout_s: float
) -> bool:
    """Wait until every client has seen every incident up to the given seqs."""
    return await wait_until(
        lambda: all(c.has(i, s) for c in clients for i, s in last_seqs.items()), timeout_s
    )


async def refused_status(url: str, **kwargs: Any) -> int | None:
    """The HTTP status of a refused handshake, or None when the handshake succeeded."""
    try:
        ws = await open_ws(url, **kwargs)
    except InvalidStatus as exc:
        return exc.response.status_code
    await ws.close()
    return None


class Rest:
    """REST writes over several replicas, each logged with its outcome."""

    def __init__(self, bases: Sequence[str], history: History, *, timeout_s: float = 30.0):
        self.bases = list(bases)
        self.history = history
        self.http = httpx.AsyncClient(
            trust_env=False,
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=400, max_keepalive_connections=100),
        )
        self._turn = itertools.count()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def post(
        self,
        op: str,
        path: str,
        body: dict[str, Any],
        headers: dict[str, str],
        *,
        kind: str,
        retry_unknown: bool = False,
        base: str | None = None,
    ) -> Write:
        """POST to one replica (round robin, or `base`); on a refused connection try the
        next one; on no answer try the next one only when the write is idempotent."""
        bases = [base] if base else self.bases
        start, began = next(self._turn), time.monotonic()
        write = Write(op, FAILED, detail="no replica reachable")
        for attempt in range(len(bases)):
            url = bases[(start + attempt) % len(bases)] + path
            try:
                r = await self.http.post(url, json=body, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                write = Write(op, FAILED, detail=f"{type(exc).__name__}")
                continue
            except httpx.TransportError as exc:
                write = Write(op, UNKNOWN, detail=f"{type(exc).__name__}")
                if retry_unknown:
                    continue
                break
            if r.is_success:
                write = Write(op, OK, kind, int(r.json()["id"]), r.status_code)
            else:
                write = Write(
                    op,
                    FAILED,
                    status=r.status_code,
                    detail=r.text[:200],
                    retry_after=r.headers.get("Retry-After"),
                )
            break
        write.took_s = time.monotonic() - began
        self.history.write(write)
        return write

    async def declare(self, headers: dict[str, str], title: str = "Nairobi River flood") -> int:
        write = await self.post(
            "declare",
            f"{API}/incidents",
            {"incident_type": "flood", "title": title},
            headers,
            kind="incident",
        )
        assert write.outcome == OK and write.object_id, write
        return write.object_id

    async def raise_request(
        self, headers: dict[str, str], incident_id: int, quantity: int = 10_000, **kw: Any
    ) -> Write:
        return await self.post(
            "raise",
            f"{API}/incidents/{incident_id}/requests",
            {"resource": "high-capacity-pump", "quantity": quantity},
            headers,
            kind="request",
            **kw,
        )

    async def claim(
        self,
        headers: dict[str, str],
        request_id: int,
        quantity: int = 1,
        key: str | None = None,
        **kw: Any,
    ) -> Write:
        return await self.post(
            "claim",
            f"{API}/requests/{request_id}/claims",
            {"quantity": quantity},
            {**headers, "Idempotency-Key": key or uuid.uuid4().hex},
            kind="claim",
            retry_unknown=True,
            **kw,
        )


async def produce(
    rest: Rest,
    manager: dict[str, str],
    responder: dict[str, str],
    incidents: dict[int, int],
    count: int,
    *,
    workers: int = 2,
    pause_s: float = 0.0,
) -> None:
    """`count` writes over the incidents (incident id -> a big open request of it):
    alternately a claim of one unit and a new request; each ok write is one event."""
    turn = itertools.count()
    pairs = list(incidents.items())

    async def worker() -> None:
        while (n := next(turn)) < count:
            incident_id, request_id = pairs[n % len(pairs)]
            if n % 3 == 2:
                await rest.raise_request(manager, incident_id, quantity=5)
            else:
                await rest.claim(responder, request_id)
            if pause_s:
                await asyncio.sleep(pause_s)

    await asyncio.gather(*(worker() for _ in range(workers)))


async def setup_incidents(
    rest: Rest, manager: dict[str, str], count: int, title: str = "flood"
) -> dict[int, int]:
    """`count` incidents of Nairobi, each with one request of 10,000 units to claim from."""
    incidents: dict[int, int] = {}
    for n in range(count):
        incident_id = await rest.declare(manager, f"{title} {n}")
        write = await rest.raise_request(manager, incident_id)
        assert write.outcome == OK and write.object_id, write
        incidents[incident_id] = write.object_id
    return incidents
