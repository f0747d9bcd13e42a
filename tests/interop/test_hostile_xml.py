"""Hostile XML against the import routes: a billion-laughs document, an external entity
(a canary server on loopback must see no request), a 50 MB body and deep nesting are each
refused with a 4xx in bounded time and memory."""

from __future__ import annotations

import http.server
import threading
import time
import tracemalloc
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.interop.flow import API
from tests.support import World

ROUTES = ("/incidents/import/cap", "/incidents/import/edxl-rm")

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    + "]><alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'>"
    + "<identifier>&lol9;</identifier></alert>"
)


@pytest.fixture
def canary() -> Iterator[list[str]]:
    """A loopback HTTP server that records every request it receives."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<x>canary</x>")

        def log_message(self, *args: object) -> None:
            """Silent: the test counts requests, it does not print them."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    seen.append(f"port:{server.server_address[1]}")
    yield seen
    server.shutdown()
    server.server_close()


def _post(
    client: TestClient, world: World, route: str, body: bytes | str
) -> tuple[int, float, float]:
    """The answer's status, its time, and the peak memory of answering it again.

    Timed and measured apart: tracing every allocation slows the request a hundredfold."""
    headers = {**world.headers("manager", "nairobi"), "Content-Type": "application/xml"}
    started = time.perf_counter()
    response = client.post(f"{API}{route}", headers=headers, content=body)
    elapsed = time.perf_counter() - started
    assert "detail" in response.json()
    tracemalloc.start()
    again = client.post(f"{API}{route}", headers=headers, content=body)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert again.status_code == response.status_code
    return response.status_code, elapsed, peak / 1e6


# A guard against unbounded work (an unprotected parser spends minutes and gigabytes on
# these), not a speed figure: the time is printed; the bound leaves room for a busy machine.
BOUND_S = 10.0


@pytest.mark.parametrize("route", ROUTES)
def test_billion_laughs_is_refused(client: TestClient, world: World, route: str) -> None:
    status, elapsed, peak_mb = _post(client, world, route, BILLION_LAUGHS)
    print(f"billion laughs on {route}: {status} in {elapsed * 1000:.1f} ms, peak {peak_mb:.1f} MB")
    assert status == 422
    assert elapsed < BOUND_S and peak_mb < 20


@pytest.mark.parametrize("route", ROUTES)
def test_external_entities_are_never_fetched(
    client: TestClient, world: World, canary: list[str], route: str
) -> None:
    port = canary[0].split(":")[1]
    for body in (
        f'<!DOCTYPE alert [<!ENTITY x SYSTEM "http://127.0.0.1:{port}/entity">]><alert>&x;</alert>',
        f'<!DOCTYPE alert SYSTEM "http://127.0.0.1:{port}/dtd"><alert/>',
        f'<!DOCTYPE a [<!ENTITY % p SYSTEM "http://127.0.0.1:{port}/param"> %p;]><a/>',
    ):
        status, elapsed, _ = _post(client, world, route, body)
        assert status == 422
        assert elapsed < BOUND_S
    time.sleep(0.2)
    print(f"canary on port {port} saw {len(canary) - 1} requests")
    assert canary[1:] == []


@pytest.mark.parametrize("route", ROUTES)
def test_a_50_mb_document_is_refused_early(client: TestClient, world: World, route: str) -> None:
    body = b"<alert>" + b"a" * 50_000_000 + b"</alert>"
    status, elapsed, peak_mb = _post(client, world, route, body)
    print(
        f"50 MB on {route}: {status} in {elapsed * 1000:.0f} ms, server-side peak {peak_mb:.1f} MB"
    )
    assert status == 413
    assert elapsed < 10


def test_a_50_mb_stream_without_length_is_refused_at_the_cap(
    client: TestClient, world: World
) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        yield b"<alert>"
        for _ in range(50):
            sent += 1
            yield b"a" * 1_000_000

    headers = {**world.headers("manager", "nairobi"), "Content-Type": "application/xml"}
    started = time.perf_counter()
    response = client.post(f"{API}/incidents/import/cap", headers=headers, content=chunks())
    elapsed = time.perf_counter() - started
    print(f"chunked 50 MB: {response.status_code} in {elapsed * 1000:.0f} ms")
    assert response.status_code == 413
    assert elapsed < 10


@pytest.mark.parametrize("route", ROUTES)
def test_deep_nesting_is_refused(client: TestClient, world: World, route: str) -> None:
    body = "<a>" * 100_000 + "</a>" * 100_000
    status, elapsed, peak_mb = _post(client, world, route, body)
    print(f"100,000 levels on {route}: {status} in {elapsed * 1000:.1f} ms, peak {peak_mb:.1f} MB")
    assert status == 422
    assert elapsed < BOUND_S
