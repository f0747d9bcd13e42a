"""Websocket client processes: many asyncio clients per process, recording receive times.

Each event the producer causes carries its production time in a tag,
`bench p<phase> t<unix time>` (aidmesh: in the claim's note; the naive app: in the
published payload, which has the same shape). A client takes `time.time()` the moment
`recv()` returns, so latency needs no matching across processes: every process keeps
a per-phase histogram and counts. Duplicates and gaps are found from each
incident's `seq`, which aidmesh promises to deliver in order without gaps.

Clients that aidmesh closes (slow consumer, 1013) reconnect and resume with their
last seq per incident, as the protocol asks; their late events count with their
real latency.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import multiprocessing as mp
import os
import random
import re
import resource
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import orjson

from bench.harness import PROCS, cpu_seconds
from bench.stats import Histogram, bucket

SEQ = re.compile(rb'"incident_id":(\d+),"seq":(\d+)')
TAG = re.compile(rb"bench p(\d+) t(\d+\.\d+)")
EVENT_PREFIX = b'{"type":"event"'


@dataclass
class Phase:
    # Per event (keyed by its production time as sent): a sparse histogram of delays,
    # so that the bus time of each event can be subtracted afterwards.
    per_event: dict[bytes, dict[int, int]] = field(default_factory=dict)
    delivered: int = 0
    max: float = 0.0


class Worker:
    """The state of one client process."""

    def __init__(self) -> None:
        self.phases: dict[int, Phase] = {}
        self.tagged = 0
        self.dups = 0
        self.gaps = 0
        self.connected = 0
        self.reconnects = 0
        self.closes: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.closing = False
        self.tasks: list[asyncio.Task[None]] = []

    # The hot path: one call per message received.
    def on_message(self, last: dict[int, int], msg: bytes) -> None:
        now = time.time()
        if not msg.startswith(EVENT_PREFIX):
            return
        m = SEQ.search(msg, 0, 400)
        if m is not None:
            incident, seq = int(m[1]), int(m[2])
            prev = last.get(incident)
            if prev is not None:
                if seq <= prev:
                    self.dups += 1
                    return
                if seq != prev + 1:
                    self.gaps += seq - prev - 1
            last[incident] = seq
        t = TAG.search(msg)
        if t is None:
            return
        self.tagged += 1
        phase_id = int(t[1])
        phase = self.phases.get(phase_id)
        if phase is None:
            phase = self.phases[phase_id] = Phase()
        phase.delivered += 1
        key = t[2]
        delay = now - float(key)
        buckets = phase.per_event.get(key)
        if buckets is None:
            buckets = phase.per_event[key] = {}
        b = bucket(delay)
        buckets[b] = buckets.get(b, 0) + 1
        if delay > phase.max:
            phase.max = delay

    async def client(
        self,
        url: str,
        spec: dict[str, Any],
        gate: asyncio.Semaphore,
        ready: asyncio.Future[bool],
    ) -> None:
        """One websocket client for the life of the run: connect, (auth, subscribe,) receive;
        reconnect after a close, resuming from its last seqs (aidmesh)."""
        aidmesh = spec["mode"] == "aidmesh"
        last: dict[int, int] = {int(k): v for k, v in (spec.get("since") or {}).items()}
        auth = b'{"op":"auth","token":"%s"}' % spec.get("token", "").encode()
        timeout = spec.get("open_timeout_s", 60)
        opener = _open_lean if spec.get("impl", "lean") == "lean" else _open_asyncio
        attempt = 0
        resume = False
        loop = asyncio.get_running_loop()
        while not self.closing:
            attempt += 1
            held = True
            await gate.acquire()
            conn: _Conn | None = None
            subscribed: asyncio.Future[None] = loop.create_future()

            def on_text(msg: bytes, sub: asyncio.Future[None] = subscribed) -> None:
                if msg.startswith(EVENT_PREFIX) or sub.done():
                    self.on_message(last, msg)
                elif msg.startswith(b'{"type":"subscribed"'):
                    sub.set_result(None)
                elif msg.startswith(b'{"type":"error"'):
                    sub.set_exception(RuntimeError(msg[:200].decode(errors="replace")))

            try:
                async with asyncio.timeout(timeout):
                    conn = await opener(url, spec.get("compression", "deflate"), on_text)
                    if aidmesh:
                        conn.send_text(auth)
                        subscribe: dict[str, Any] = {"op": "subscribe", "scopes": spec["scopes"]}
                        if resume and last:
                            subscribe["since"] = {str(k): v for k, v in last.items()}
                        conn.send_text(orjson.dumps(subscribe))
                        await asyncio.wait({subscribed, conn.closed}, return_when="FIRST_COMPLETED")
                        if not subscribed.done():
                            raise RuntimeError(f"closed before subscribed: {conn.closed.result()}")
                        subscribed.result()
                gate.release()
                held = False
                if not ready.done():
                    ready.set_result(True)
                self.connected += 1
                try:
                    code = await conn.closed
                finally:
                    self.connected -= 1
                self.closes[str(code)] += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.errors[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
            finally:
                if held:
                    gate.release()
                if conn is not None:
                    conn.abort()
                if not subscribed.done():
                    subscribed.cancel()
            if self.closing:
                return
            if not ready.done() and attempt >= 3:
                ready.set_result(False)
                return
            if ready.done():
                self.reconnects += 1
                resume = aidmesh
            await asyncio.sleep(random.uniform(0.2, 1.0))

    async def connect(self, spec: dict[str, Any]) -> dict[str, Any]:
        started = time.monotonic()
        gate = asyncio.Semaphore(spec.get("concurrency", 64))
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[bool]] = []
        urls = spec["urls"]
        for i in range(spec["count"]):
            ready: asyncio.Future[bool] = loop.create_future()
            url = urls[(spec.get("offset", 0) + i) % len(urls)]
            self.tasks.append(asyncio.create_task(self.client(url, spec, gate, ready)))
            futures.append(ready)
        done, _pending = await asyncio.wait(futures, timeout=spec.get("timeout_s", 300))
        ok = sum(1 for f in done if f.result())
        return {
            "ok": ok,
            "failed": len(futures) - ok,
            "seconds": round(time.monotonic() - started, 2),
            "errors": dict(self.errors.most_common(5)),
        }

    def counts(self, phase_id: int) -> dict[str, Any]:
        phase = self.phases.get(phase_id)
        return {
            "delivered": phase.delivered if phase else 0,
            "tagged": self.tagged,
            "connected": self.connected,
            "reconnects": self.reconnects,
        }

    def stats(self, phase_id: int) -> dict[str, Any]:
        phase = self.phases.get(phase_id) or Phase()
        return {
            "delivered": phase.delivered,
            "per_event": {k.decode(): v for k, v in phase.per_event.items()},
            "max": phase.max,
            "dups": self.dups,
            "gaps": self.gaps,
            "connected": self.connected,
            "reconnects": self.reconnects,
            "closes": dict(self.closes),
            "errors": dict(self.errors.most_common(5)),
        }


class _Conn(abc.ABC):
    """What `Worker.client` needs of a websocket connection."""

    closed: asyncio.Future[Any]  # resolves to the close code (or a reason) when it ends

    @abc.abstractmethod
    def send_text(self, data: bytes) -> None: ...

    @abc.abstractmethod
    def abort(self) -> None: ...


class _Lean(asyncio.Protocol, _Conn):
    """The websockets library's sans-I/O client protocol on an asyncio transport.

    Each text frame is handed to `on_text` from `data_received`, without a task switch
    or a queue per message, so the clients spend as little of the shared CPU as they can."""

    def __init__(self, url: str, compression: str | None, on_text: Any) -> None:
        from websockets.client import ClientProtocol
        from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
        from websockets.frames import Opcode
        from websockets.uri import parse_uri

        loop = asyncio.get_running_loop()
        extensions = [ClientPerMessageDeflateFactory()] if compression == "deflate" else None
        self.ws = ClientProtocol(parse_uri(url), extensions=extensions, max_size=2**22)
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed = loop.create_future()
        self.on_text = on_text
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses
        self._text = Opcode.TEXT

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.ws.send_request(self.ws.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            opcode = getattr(event, "opcode", None)
            if opcode is self._text:
                self.on_text(event.data)  # type: ignore[union-attr]
            elif opcode is None and not self.opened.done():  # the handshake response
                if ws.handshake_exc is not None:
                    self.opened.set_exception(ws.handshake_exc)
                else:
                    self.opened.set_result(None)
        self._flush()

    def _flush(self) -> None:
        chunks = self.ws.data_to_send()
        if not chunks or self.transport is None:
            return
        payload = b"".join(chunks)
        if payload:
            self.transport.write(payload)
        if chunks[-1] == b"":
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        code: Any = self.ws.close_code if self.ws.close_code is not None else "no-close-frame"
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed during handshake ({exc})"))
        if not self.closed.done():
            self.closed.set_result(code)

    def send_text(self, data: bytes) -> None:
        self.ws.send_text(data)
        self._flush()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def _open_lean(url: str, compression: str | None, on_text: Any) -> _Conn:
    from websockets.uri import parse_uri

    uri = parse_uri(url)
    loop = asyncio.get_running_loop()
    _transport, proto = await loop.create_connection(
        lambda: _Lean(url, compression, on_text), uri.host, uri.port
    )
    try:
        await proto.opened
    except BaseException:
        proto.abort()
        raise
    return proto


class _HighLevel(_Conn):
    """The websockets library's asyncio client (`websockets.asyncio.client.connect`)."""

    def __init__(self, ws: Any, on_text: Any) -> None:
        self.ws = ws
        self.closed = asyncio.get_running_loop().create_future()
        self.on_text = on_text
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                self.on_text(await self.ws.recv(decode=False))
        except ConnectionClosed as exc:
            code: Any = exc.rcvd.code if exc.rcvd is not None else "no-close-frame"
            self.closed.set_result(code)
        except Exception as exc:
            self.closed.set_result(type(exc).__name__)

    def send_text(self, data: bytes) -> None:
        self.sending = asyncio.ensure_future(self.ws.send(data, text=True))

    def abort(self) -> None:
        self.task.cancel()
        with contextlib.suppress(Exception):
            self.ws.transport.abort()


async def _open_asyncio(url: str, compression: str | None, on_text: Any) -> _Conn:
    from websockets.asyncio.client import connect

    ws = await connect(
        url,
        ping_interval=None,
        close_timeout=2,
        max_size=2**22,
        open_timeout=None,
        compression=compression,
    )
    return _HighLevel(ws, on_text)


def _worker_main(pipe: Connection) -> None:
    """Entry point of a client process: commands arrive on `pipe`, one at a time."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    worker = Worker()

    async def handle(cmd: dict[str, Any]) -> Any:
        op = cmd["cmd"]
        if op == "connect":
            return await worker.connect(cmd)
        if op == "counts":
            return worker.counts(cmd["phase"])
        if op == "stats":
            return worker.stats(cmd["phase"])
        raise ValueError(op)

    def commands() -> None:
        while True:
            try:
                cmd = pipe.recv()
            except (EOFError, OSError):
                cmd = {"cmd": "close"}
            if cmd["cmd"] == "close":
                worker.closing = True
                with contextlib.suppress(Exception):
                    pipe.send({"ok": True})
                os._exit(0)
            future = asyncio.run_coroutine_threadsafe(handle(cmd), loop)
            try:
                pipe.send(future.result())
            except Exception as exc:  # report, do not die: the parent decides
                pipe.send({"error": repr(exc)})

    threading.Thread(target=commands, daemon=True).start()
    loop.run_forever()


class Fleet:
    """A set of client processes driven from the benchmark process."""

    def __init__(self, processes: int) -> None:
        ctx = mp.get_context("spawn")
        self.pipes: list[Connection] = []
        self.procs: list[mp.process.BaseProcess] = []
        for i in range(processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker_main, args=(child,), name=f"bench-clients-{i}", daemon=True
            )
            proc.start()
            PROCS.track(proc)
            self.pipes.append(parent)
            self.procs.append(proc)
        self.total = 0

    def _all(self, cmds: list[dict[str, Any]], timeout_s: float = 600) -> list[Any]:
        for pipe, cmd in zip(self.pipes, cmds, strict=True):
            pipe.send(cmd)
        replies = []
        deadline = time.monotonic() + timeout_s
        for pipe in self.pipes:
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError("a client process did not answer")
            reply = pipe.recv()
            if isinstance(reply, dict) and "error" in reply:
                raise RuntimeError(f"client process: {reply['error']}")
            replies.append(reply)
        return replies

    def connect(self, count: int, **spec: Any) -> dict[str, Any]:
        """Open `count` more clients, spread evenly over the processes and `spec['urls']`."""
        n = len(self.pipes)
        shares = [count // n + (1 if i < count % n else 0) for i in range(n)]
        cmds = []
        offset = self.total
        for share in shares:
            cmds.append({"cmd": "connect", "count": share, "offset": offset, **spec})
            offset += share
        replies = self._all(cmds, timeout_s=spec.get("timeout_s", 300) + 30)
        self.total += count
        errors: Counter[str] = Counter()
        for r in replies:
            errors.update(r["errors"])
        return {
            "ok": sum(r["ok"] for r in replies),
            "failed": sum(r["failed"] for r in replies),
            "seconds": max(r["seconds"] for r in replies),
            "errors": dict(errors.most_common(5)),
        }

    def counts(self, phase: int) -> dict[str, int]:
        replies = self._all([{"cmd": "counts", "phase": phase}] * len(self.pipes), timeout_s=60)
        keys = ("delivered", "tagged", "connected", "reconnects")
        return {k: sum(r[k] for r in replies) for k in keys}

    def stats(self, phase: int) -> dict[str, Any]:
        replies = self._all([{"cmd": "stats", "phase": phase}] * len(self.pipes), timeout_s=120)
        hist = Histogram()
        per_event: dict[str, Counter[int]] = {}
        closes: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        for r in replies:
            for key, buckets in r["per_event"].items():
                per_event.setdefault(key, Counter()).update(buckets)
                for b, c in buckets.items():
                    hist.counts[b] += c
                    hist.n += c
            hist.max = max(hist.max, r["max"])
            closes.update(r["closes"])
            errors.update(r["errors"])
        return {
            "delivered": sum(r["delivered"] for r in replies),
            "hist": hist,
            "per_event": per_event,
            "dups": sum(r["dups"] for r in replies),
            "gaps": sum(r["gaps"] for r in replies),
            "connected": sum(r["connected"] for r in replies),
            "reconnects": sum(r["reconnects"] for r in replies),
            "closes": dict(closes),
            "errors": dict(errors.most_common(5)),
        }

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.procs if p.pid is not None)

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(Exception):
                pipe.send({"cmd": "close"})
        for proc in self.procs:
            proc.join(10)
            PROCS.end_mp(proc)
        for pipe in self.pipes:
            with contextlib.suppress(Exception):
                pipe.close()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit("bench.clients is driven by `python -m bench`")
