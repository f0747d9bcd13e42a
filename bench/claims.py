"""Claims: 500 concurrent claimers racing on requests with small quantities, through the
REST API or over websockets (as the respond page claims), on SQLite and on PostgreSQL.
Reports claims/s, latency and over-claims. Like the respond page, each client process
watches the incidents' events live and claims no more than a request has left; the
race is real all the same, since 500 claimers act on what they saw a moment ago.

An over-claim is a request whose `claimed_quantity` exceeds its `quantity`, whose
`claimed_quantity` differs from the sum of its active claims in the database, or
whose successful (201) claims as the clients saw them add up to more than its
quantity. Each must be 0.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import random
import re
import time
import uuid
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

import orjson

from bench.harness import (
    PROCS,
    Profiler,
    Server,
    aidmesh_replica,
    log,
    machine_cpu_seconds,
    postgres_cpu_seconds,
    start_all,
)
from bench.seed import World, add_packages, declare, raise_request
from bench.stats import Histogram


class _Http(asyncio.Protocol):
    """A keep-alive HTTP/1.1 connection with one request in flight, parsed by httptools:
    the claimers share the machine with the server, so they spend as little as they can
    (httpx costs about 3 ms of CPU per request here, more than the server's claim)."""

    def __init__(self, host: str) -> None:
        import httptools

        self.host = host.encode()
        self.package_id: int | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.transport: Any = None
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.body: list[bytes] = []
        self.token_header = b""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_begin(self) -> None:
        self.body = []

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self.parser.get_status_code(), b"".join(self.body)))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost ({exc})"))

    async def post(self, path: str, headers: bytes, body: bytes) -> tuple[int, bytes]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(
            b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n%s\r\n%s" % (path.encode(), self.host, len(body), headers, body)
        )
        return await self.waiter


class _WsClaims:
    """A responder's websocket, claiming with `{"op": "claim"}` as the respond page does."""

    def __init__(self) -> None:
        self.conn: Any = None
        self.package_id: int | None = None
        self.waiter: asyncio.Future[dict[str, Any]] | None = None

    def on_text(self, data: str) -> None:
        message = orjson.loads(data)
        waiter = self.waiter
        if message.get("type") in ("welcome", "ack", "error") and waiter and not waiter.done():
            waiter.set_result(message)

    async def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.conn.send_text(orjson.dumps(message))
        return await self.waiter


class _Watcher:
    """What a responder's screen knows: the claim events of the benchmark's incidents,
    live over one websocket per process, telling how much of each request is left."""

    def __init__(self, left: dict[int, int], requests: list[int]) -> None:
        self.left = left
        self.requests = requests
        self.conn: Any = None
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_text(self, data: str) -> None:
        message = orjson.loads(data)
        kind = message.get("type")
        if kind == "event":
            request = message["event"]["data"].get("request")
            if request is not None:
                self.learn(request["id"], request["remaining_quantity"])
        elif kind in ("subscribed", "error") and not self.subscribed.done():
            self.subscribed.set_result(None)

    def learn(self, request_id: int, left: int) -> None:
        if request_id not in self.left:
            return
        self.left[request_id] = min(self.left[request_id], left)
        if left <= 0 and request_id in self.requests:
            self.requests.remove(request_id)


def _claimer_main(pipe: Connection, spec: dict[str, Any]) -> None:
    """One client process: `spec['claimers']` concurrent claimers until the requests run out,
    each on a connection of its own (REST or websocket, as `spec['via']` says)."""
    from urllib.parse import urlsplit

    from bench.clients import _open_lean

    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run

    async def main() -> dict[str, Any]:
        requests: list[int] = list(spec["requests"])
        quantities: dict[int, int] = dict(spec["quantities"])
        taken: Counter[int] = Counter()
        statuses: Counter[str] = Counter()
        ok_latency = Histogram()
        all_latency = Histogram()
        first_ok = last_ok = 0.0
        rng = random.Random(spec["seed"])
        loop = asyncio.get_running_loop()
        host = urlsplit(spec["url"])

        async def connect(i: int) -> Any:
            token = spec["tokens"][i % len(spec["tokens"])]
            package_id = spec["packages"][i % len(spec["packages"])]
            if spec["via"] == "ws":
                ws = _WsClaims()
                ws.conn = await _open_lean(spec["ws_url"], None, ws.on_text)
                welcome = await ws.ask({"op": "auth", "token": token})
                assert welcome["type"] == "welcome", welcome
                ws.package_id = package_id
                return ws
            _transport, http = await loop.create_connection(
                lambda: _Http(host.netloc), host.hostname, host.port
            )
            http.token_header = b"Authorization: Bearer %s\r\n" % token.encode()
            http.package_id = package_id
            return http

        async def claim(conn: Any, request_id: int, quantity: int) -> tuple[int, str]:
            key = uuid.uuid4().hex
            if spec["via"] == "ws":
                reply = await conn.ask(
                    {
                        "op": "claim",
                        "request_id": request_id,
                        "quantity": quantity,
                        "idempotency_key": key,
                        **({"package_id": conn.package_id} if conn.package_id else {}),
                    }
                )
                return int(reply["status"]), str(reply.get("detail", ""))
            status, body = await conn.post(
                f"/api/v1/requests/{request_id}/claims",
                conn.token_header + b"Idempotency-Key: %s\r\n" % key.encode(),
                b'{"quantity":%d,"package_id":%d}' % (quantity, conn.package_id)
                if conn.package_id
                else b'{"quantity":%d}' % quantity,
            )
            return status, "" if status == 201 else str(orjson.loads(body).get("detail", ""))

        left = dict(quantities)
        watcher = _Watcher(left, requests)
        watcher.conn = await _open_lean(spec["ws_url"], None, watcher.on_text)
        scopes = [f"incident:{i}" for i in spec["incidents"]]
        watcher.conn.send_text(orjson.dumps({"op": "auth", "token": spec["tokens"][0]}))
        watcher.conn.send_text(orjson.dumps({"op": "subscribe", "scopes": scopes}))
        await asyncio.wait_for(watcher.subscribed, 30)
        conns = await asyncio.gather(*(connect(i) for i in range(spec["claimers"])))
        pipe.send("ready")
        pipe.recv()  # wait for the start signal so every process begins together
        stop_at = time.time() + spec["max_s"]

        async def claimer(conn: Any) -> None:
            nonlocal first_ok, last_ok
            while requests and time.time() < stop_at:
                request_id = rng.choice(requests)
                quantity = min(rng.choice((1, 1, 2)), left[request_id])
                at = time.time()
                try:
                    status, detail = await claim(conn, request_id, quantity)
                except (ConnectionError, OSError) as exc:
                    statuses[type(exc).__name__] += 1
                    return
                done = time.time()
                all_latency.add(done - at)
                statuses[str(status)] += 1
                if status == 201:
                    ok_latency.add(done - at)
                    taken[request_id] += quantity
                    first_ok = first_ok or at
                    last_ok = done
                elif status == 409:
                    # Not enough left, or nothing: the answer says how much is.
                    found = re.search(r"only (\d+) left", detail)
                    watcher.learn(request_id, int(found[1]) if found else 0)

        await asyncio.gather(*(claimer(conn) for conn in conns))
        watcher.conn.abort()
        for conn in conns:
            if spec["via"] == "ws":
                conn.conn.abort()
            else:
                conn.transport.close()
        return {
            "statuses": dict(statuses),
            "taken": dict(taken),
            "ok_latency": ok_latency.compact(),
            "all_latency": all_latency.compact(),
            "first_ok": first_ok,
            "last_ok": last_ok,
            "quantities": quantities,
        }

    pipe.send(runner(main()))


def _over_claims(world: World, request_ids: list[int]) -> dict[str, int]:
    from sqlalchemy import text

    ids = ",".join(str(i) for i in request_ids)
    with world.executor.db.engine.connect() as conn:
        over = conn.execute(
            text(
                "SELECT count(*) FROM aid_requests WHERE id IN (" + ids + ")"  # noqa: S608
                " AND (claimed_quantity > quantity OR claimed_quantity < 0)"
            )
        ).scalar_one()
        mismatch = conn.execute(
            text(
                "SELECT count(*) FROM aid_requests r WHERE r.id IN (" + ids + ") AND"  # noqa: S608
                " r.claimed_quantity <> (SELECT COALESCE(SUM(c.quantity), 0) FROM claims c"
                " WHERE c.request_id = r.id AND c.status IN"
                " ('claimed', 'accepted', 'en_route', 'on_site', 'released'))"
            )
        ).scalar_one()
        units = conn.execute(
            text(
                "SELECT COALESCE(SUM(claimed_quantity), 0), COALESCE(SUM(quantity), 0)"  # noqa: S608
                " FROM aid_requests WHERE id IN (" + ids + ")"
            )
        ).one()
        # A package's committed units against its claims that hold them, and its cap.
        packages = conn.execute(
            text(
                "SELECT count(*) FROM package_items i WHERE i.committed_quantity > i.cap_quantity"
                " OR i.committed_quantity <> (SELECT COALESCE(SUM(c.quantity), 0) FROM claims c"
                " WHERE c.package_id = i.package_id AND c.status IN"
                " ('claimed', 'accepted', 'en_route', 'on_site'))"
            )
        ).scalar_one()
    return {
        "packages_over_or_mismatched": int(packages),
        "requests_over_quantity": int(over),
        "requests_sum_mismatch": int(mismatch),
        "units_claimed": int(units[0]),
        "units_total": int(units[1]),
    }


def run(
    world: World,
    *,
    backend: str,
    database_url: str,
    redis_url: str,
    work: Any,
    claimers: int = 500,
    requests: int = 1500,
    incidents: int = 30,
    quantity: int = 4,
    processes: int = 4,
    max_s: float = 60.0,
    replicas: int = 1,
    via: str = "rest",
    fast: bool = True,
    from_packages: bool = False,
    lane: bool = True,
    profiler: Profiler | None = None,
) -> dict[str, Any]:
    log(
        f"claims on {backend} via {via}: raising {requests} requests of {quantity}"
        f" in {incidents} incidents"
    )
    started = time.monotonic()
    incident_ids = [declare(world, f"Claims benchmark {i}") for i in range(incidents)]
    request_ids = [
        raise_request(world, incident_ids[i % incidents], quantity) for i in range(requests)
    ]
    packages = add_packages(world) if from_packages else {}
    path = "package" if from_packages else "orm" if not fast else "fast" if lane else "route"
    log(f"claims on {backend}: seeded in {time.monotonic() - started:.1f}s")
    servers: list[Server] = [
        aidmesh_replica(
            f"claims-{backend}-{via}-{path}-{i}",
            database_url=database_url,
            redis_url=redis_url,
            work=work,
            AIDMESH_DB_FAST_CLAIMS="true" if fast else "false",
            AIDMESH_REST_CLAIM_LANE="true" if lane else "false",
        )
        for i in range(replicas)
    ]
    ctx = mp.get_context("spawn")
    procs: list[Any] = []
    pipes: list[Connection] = []
    try:
        start_all(servers)
        share = claimers // processes
        for p in range(processes):
            parent, child = ctx.Pipe()
            spec = {
                "url": servers[p % len(servers)].url,
                "ws_url": servers[p % len(servers)].ws_url,
                "via": via,
                "tokens": [t.secret for t in world.responders],
                # each token's city's package, when the claims are made from packages
                "packages": [packages.get(t.actor.city_id or 0) for t in world.responders],
                "requests": request_ids,
                "incidents": incident_ids,
                "quantities": {r: quantity for r in request_ids},
                "claimers": share + (1 if p < claimers % processes else 0),
                "max_s": max_s,
                "seed": p,
            }
            proc = ctx.Process(target=_claimer_main, args=(child, spec), daemon=True)
            proc.start()
            PROCS.track(proc)
            procs.append(proc)
            pipes.append(parent)
        for pipe in pipes:  # every claimer connected (and, on websockets, authenticated)
            if not pipe.poll(120) or pipe.recv() != "ready":
                raise TimeoutError("a claimer process did not connect")
        cpu_before = sum(s.cpu() for s in servers)
        pg_before, (busy_before, _) = postgres_cpu_seconds(), machine_cpu_seconds()
        if profiler is not None:
            name = f"claims-{backend}-{via}-{path}-r{replicas}"
            profiler.start(name, [s.pid for s in servers])
        for pipe in pipes:
            pipe.send("go")
        replies = []
        for pipe in pipes:
            if not pipe.poll(max_s + 120):
                raise TimeoutError("a claimer process did not finish")
            replies.append(pipe.recv())
        if profiler is not None:
            profiler.stop()
        server_cpu = sum(s.cpu() for s in servers) - cpu_before
        pg_cpu = postgres_cpu_seconds() - pg_before
        machine_cpu = machine_cpu_seconds()[0] - busy_before
    finally:
        for proc in procs:
            proc.join(5)
            PROCS.end_mp(proc)
        for server in servers:
            server.stop()

    statuses: Counter[str] = Counter()
    taken: Counter[int] = Counter()
    ok_latency, all_latency = Histogram(), Histogram()
    for reply in replies:
        statuses.update(reply["statuses"])
        taken.update({int(k): v for k, v in reply["taken"].items()})
        ok_latency.merge(reply["ok_latency"])
        all_latency.merge(reply["all_latency"])
    firsts = [r["first_ok"] for r in replies if r["first_ok"]]
    lasts = [r["last_ok"] for r in replies if r["last_ok"]]
    span = (max(lasts) - min(firsts)) if firsts and lasts else 0.0
    ok = statuses.get("201", 0)
    attempts = sum(statuses.values())
    client_over = sum(1 for r, units in taken.items() if units > quantity)
    db = _over_claims(world, request_ids)
    figures = {
        "backend": backend,
        "via": via,
        "replicas": replicas,
        "claimers": claimers,
        "requests": requests,
        "quantity_each": quantity,
        "claims_ok": ok,
        "attempts": attempts,
        "statuses": dict(statuses),
        "seconds": round(span, 2),
        "claims_per_s": round(ok / span, 1) if span else None,
        "attempts_per_s": round(attempts / span, 1) if span else None,
        "ok_latency": ok_latency.summary_ms(),
        "all_latency": all_latency.summary_ms(),
        "server_cpu_ms_per_attempt": round(1000 * server_cpu / attempts, 3) if attempts else None,
        # Where a claim's CPU goes on this machine: the database (local servers only) and
        # everything together (replicas, database, Redis, the claimers themselves).
        "postgres_cpu_ms_per_claim": (
            round(1000 * pg_cpu / ok, 3) if ok and backend == "postgresql" else None
        ),
        "machine_cpu_ms_per_claim": round(1000 * machine_cpu / ok, 3) if ok else None,
        "over_claims": db["requests_over_quantity"]
        + db["requests_sum_mismatch"]
        + db["packages_over_or_mismatched"]
        + client_over,
        "client_seen_over_claims": client_over,
        **db,
    }
    log(
        f"claims on {backend} via {via}: {ok} ok of {attempts} in {span:.1f}s"
        f" = {figures['claims_per_s']}/s, "
        f"p99 {ok_latency.summary_ms()['p99_ms']} ms, over-claims {figures['over_claims']}"
    )
    return figures
