"""The load of the failover and restart tests (D11, D12): claims over REST and over
websockets, websocket tickets issued and redeemed across replicas, and watchers on
every replica, all logged into one `History` for the shared checker.

Every request has a timeout well under the test's; a request that hits it is a hang
and is counted as such (`hangs`), never retried silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from tests.history import FAILED, OK, UNKNOWN, History, Write
from tests.realtime.live_client import API, LiveClient, Rest, open_ws, produce
from tests.replicas import Cluster

# A request that takes longer than this hangs, as far as these tests are concerned.
REQUEST_TIMEOUT_S = 8.0


@dataclass
class Refusal:
    """A write or ticket request that was answered with an error status."""

    op: str
    status: int | None
    json_detail: bool
    retry_after: str | None


@dataclass
class MixedLoad:
    """Writers over REST and websockets and a ticket prober, running until `stop`."""

    cluster: Cluster
    history: History
    incidents: dict[int, int]
    ws_claimers: list[LiveClient]
    rest: Rest
    tickets: Counter[int] = field(default_factory=Counter)
    ticket_hangs: int = 0
    ws_hangs: int = 0
    ws_resent: int = 0
    cross_replica_redeems: int = 0
    refusals: list[Refusal] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> MixedLoad:
        manager = self.cluster.headers("manager", "nairobi")
        responder = self.cluster.headers("responder", "thika")
        self._tasks = [
            asyncio.ensure_future(self._rest_writes(manager, responder)),
            *(asyncio.ensure_future(self._ws_claims(c)) for c in self.ws_claimers),
            asyncio.ensure_future(self._ticket_probe()),
        ]
        return self

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _rest_writes(self, manager: dict[str, str], responder: dict[str, str]) -> None:
        while not self._stop.is_set():
            await produce(self.rest, manager, responder, self.incidents, 8, workers=2, pause_s=0.02)

    async def _ws_claims(self, claimer: LiveClient) -> None:
        """Claims over the claimer's live connection, one at a time. While it is not
        connected (its replica restarting) it waits, and a claim whose connection closed
        before the answer is sent again with the same Idempotency-Key once it is back,
        as a client that must know the outcome does."""
        pairs = itertools.cycle(self.incidents.values())
        key, request_id = None, 0
        while not self._stop.is_set():
            if claimer.ws is None or not claimer.live.is_set():
                await asyncio.sleep(0.02)
                continue
            if key is None:
                key, request_id = uuid.uuid4().hex, next(pairs)
            began = time.monotonic()
            message = {"op": "claim", "request_id": request_id, "quantity": 1}
            try:
                reply = await claimer.command(
                    {**message, "idempotency_key": key}, timeout_s=REQUEST_TIMEOUT_S
                )
            except TimeoutError:
                self.ws_hangs += 1
                self.history.write(Write("ws-claim", UNKNOWN, detail="timeout"))
                key = None
                continue
            except Exception:  # the socket closed under it: same key, once reconnected
                self.ws_resent += 1
                await asyncio.sleep(0.02)
                continue
            key = None
            took = time.monotonic() - began
            if reply.get("type") == "ack":
                claim_id = int(reply["result"]["id"])
                write = Write("ws-claim", OK, "claim", claim_id, reply["status"], took_s=took)
                self.history.write(write)
            else:
                status = reply.get("status")
                self.history.write(
                    Write("ws-claim", FAILED, status=status, detail=str(reply)[:200], took_s=took)
                )
                self.refusals.append(Refusal("ws-claim", status, "detail" in reply, "n/a"))
            await asyncio.sleep(0.01)

    async def _ticket_probe(self) -> None:
        """Issue a ticket on one replica and redeem it on the other, over and over: the
        ticket store lives in Redis and must follow it through a failover."""
        token = self.cluster.token("observer", "thika")
        headers = {"Authorization": f"Bearer {token}"}
        turn = itertools.count()
        async with httpx.AsyncClient(trust_env=False, timeout=REQUEST_TIMEOUT_S) as http:
            while not self._stop.is_set():
                replicas = [r for r in self.cluster.replicas if r.alive()]
                n = next(turn)
                issuer, redeemer = replicas[n % len(replicas)], replicas[(n + 1) % len(replicas)]
                try:
                    r = await http.post(f"{issuer.url}{API}/ws-ticket", headers=headers)
                except httpx.TimeoutException:
                    self.ticket_hangs += 1
                    continue
                except httpx.TransportError:
                    await asyncio.sleep(0.05)  # the issuer is restarting
                    continue
                self.tickets[r.status_code] += 1
                if r.status_code != 200:
                    self.refusals.append(
                        Refusal(
                            "ws-ticket",
                            r.status_code,
                            _json_detail(r.text),
                            r.headers.get("Retry-After"),
                        )
                    )
                else:
                    await self._redeem(redeemer.ws_url, r.json()["ticket"])
                await asyncio.sleep(0.1)

    async def _redeem(self, ws_url: str, ticket: str) -> None:
        with contextlib.suppress(OSError, TimeoutError, Exception):
            async with await open_ws(f"{ws_url}?ticket={ticket}") as ws:
                welcome = orjson.loads(await asyncio.wait_for(ws.recv(), REQUEST_TIMEOUT_S))
                if welcome.get("type") == "welcome":
                    self.cross_replica_redeems += 1

    def rest_refusals(self) -> list[Refusal]:
        return [
            Refusal(w.op, w.status, _json_detail(w.detail), w.retry_after)
            for w in self.history.writes
            if w.outcome == FAILED and not w.op.startswith("ws-")
        ]

    def unexpected_refusals(self) -> list[Refusal]:
        """Refusals other than the documented JSON 503 with Retry-After (a ws claim's
        refusal carries no header: its status and detail are the frame)."""
        return [
            r
            for r in [*self.rest_refusals(), *self.refusals]
            if not (r.status == 503 and r.json_detail and r.retry_after)
        ]

    def hangs(self) -> int:
        rest_hangs = sum(
            1 for w in self.history.writes if w.outcome == UNKNOWN and "Timeout" in w.detail
        )
        return rest_hangs + self.ws_hangs + self.ticket_hangs


def watchers(
    cluster: Cluster, history: History, incidents: dict[int, int], *, rotate: bool
) -> list[LiveClient]:
    """Three observers per replica, one of them with a ticket; with `rotate`, each
    reconnects to the next replica after a close, else to its own."""
    scopes = [f"incident:{i}" for i in incidents]
    urls = [r.ws_url for r in cluster.replicas]
    return [
        LiveClient(
            f"watch-{r.name}-{n}",
            [urls[(k + j) % len(urls)] for j in range(len(urls))] if rotate else [r.ws_url],
            cluster.token("observer", "thika"),
            scopes,
            history,
            use_ticket=n == 0,
            rotate=rotate,
        ).start()
        for k, r in enumerate(cluster.replicas)
        for n in range(3)
    ]


def claimers(cluster: Cluster, history: History, incidents: dict[int, int]) -> list[LiveClient]:
    """One responder per replica claiming over its websocket (see `MixedLoad`); it is
    subscribed too, and moves to the next replica after a close."""
    scopes = [f"incident:{i}" for i in incidents]
    urls = [r.ws_url for r in cluster.replicas]
    return [
        LiveClient(
            f"claim-{r.name}",
            [urls[(k + j) % len(urls)] for j in range(len(urls))],
            cluster.token("responder", "thika"),
            scopes,
            history,
        ).start()
        for k, r in enumerate(cluster.replicas)
    ]


def _json_detail(text: str) -> bool:
    try:
        body: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return isinstance(body, dict) and "detail" in body
