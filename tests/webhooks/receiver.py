"""A real HTTP receiver on a free loopback port, for webhook tests: each path behaves as a
test says (answer 500 first, time out, 429 with Retry-After, 410, 302) and every request
is recorded with its headers, body and arrival time."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOST = "127.0.0.1"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(self.body)["event"]
        return event

    @property
    def event_id(self) -> str:
        return self.headers["webhook-id"]


# A behaviour: (path, how many times this event id was seen before) -> (status, headers,
# seconds to sleep before answering).
Behaviour = Callable[[int], tuple[int, dict[str, str], float]]


def ok(_: int) -> tuple[int, dict[str, str], float]:
    return 200, {}, 0.0


@dataclass
class Receiver:
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    _seen: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def seq_order_broken(self) -> tuple[int, int, int] | None:
        """The first event (incident, seq, last seq before) whose first arrival came
        after a later seq of its incident; None when every incident's events first
        arrived in seq order (redeliveries of an event already seen do not count)."""
        seen: set[str] = set()
        last: dict[int, int] = {}
        for got in list(self.received):
            if got.event_id in seen:
                continue
            seen.add(got.event_id)
            incident_id, seq = got.event["incident_id"], got.event["seq"]
            if seq <= last.get(incident_id, 0):
                return incident_id, seq, last[incident_id]
            last[incident_id] = seq
        return None

    def handle(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], float]:
        behaviour = self.behaviours.get(path, ok)
        key = (path, headers.get("webhook-id", ""))
        with self._lock:
            before = self._seen[key]
            self._seen[key] += 1
        status, extra, delay = behaviour(before)
        with self._lock:
            self.received.append(Received(path, headers, body, time.monotonic(), status))
        return status, extra, delay


@contextmanager
def running(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, delay = receiver.handle(self.path, headers, body)
            if delay:
                time.sleep(delay)
            answer = b'{"ok": true}' if status < 300 else b'{"error": "test says no"}'
            try:
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sender gave up waiting (a timeout test)

        do_GET = do_POST

        def log_message(self, *args: Any) -> None:
            return

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            return  # a sender killed mid-request resets its connection: expected here

    server = Server((HOST, receiver.port), Handler)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
