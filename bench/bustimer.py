"""A process that notes when each benchmark event appears on the Redis bus.

It subscribes to the bus channels (by pattern) like one more replica would and records
`time.time()` per event tag. Subtracting that from a client's receive time gives
the fan-out latency alone (bus → socket), without the claim's own REST and
database time that the end-to-end figure includes.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import re
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from bench.harness import PROCS

TAG = re.compile(rb"bench p(\d+) t(\d+\.\d+)")


def _main(pipe: Connection, redis_url: str, patterns: list[str]) -> None:
    import redis

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    seen: dict[int, dict[str, float]] = {}
    lock = threading.Lock()

    def listen() -> None:
        client = redis.Redis.from_url(redis_url)
        pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        pubsub.psubscribe(*patterns)
        pipe.send("ready")
        for message in pubsub.listen():
            now = time.time()
            data = message.get("data")
            if not isinstance(data, bytes):
                continue
            m = TAG.search(data)
            if m is None:
                continue
            with lock:
                seen.setdefault(int(m[1]), {}).setdefault(m[2].decode(), now)

    threading.Thread(target=listen, daemon=True).start()
    while True:
        try:
            cmd = pipe.recv()
        except (EOFError, OSError):
            return
        if cmd == "close":
            return
        with lock:
            pipe.send(seen.pop(int(cmd), {}))


class BusTimer:
    def __init__(self, redis_url: str, patterns: list[str]) -> None:
        ctx = mp.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        self.proc = ctx.Process(target=_main, args=(child, redis_url, patterns), daemon=True)
        self.proc.start()
        PROCS.track(self.proc)
        if not self.pipe.poll(30) or self.pipe.recv() != "ready":
            raise RuntimeError("the bus timer did not subscribe")

    def times(self, phase: int) -> dict[str, float]:
        self.pipe.send(phase)
        if not self.pipe.poll(60):
            raise TimeoutError("the bus timer did not answer")
        result: dict[str, float] = self.pipe.recv()
        return result

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.pipe.send("close")
        self.proc.join(5)
        PROCS.end_mp(self.proc)

    def __enter__(self) -> BusTimer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
