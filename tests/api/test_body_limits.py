"""The body gate (RELIABILITY S6, in process): a body is refused before any of it is read
when the token is missing or wrong (401) or its declared length is over the route's cap
(413); a streamed body is cut off as soon as it passes the cap; deep nesting is refused
before it is parsed.

These tests drive the app at the ASGI level, counting the bytes the app pulls from the
client: "before reading" is then a figure, not an inference from the status code.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Message

from service.api.body_limits import BODY_CAPS, DEFAULT_CAP
from tests.support import World

API = "/api/v1"
README = Path(__file__).resolve().parents[2] / "README.md"
HUGE = 200 * 1024 * 1024
CHUNK = 64 * 1024


@dataclass
class Exchange:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    pulled: int = 0  # body bytes the app took from the client


def _endless(chunk: int = CHUNK) -> Iterator[bytes]:
    return itertools.repeat(b"[" * chunk)


async def _exchange(
    app: ASGIApp, method: str, path: str, headers: dict[str, str], chunks: Iterator[bytes]
) -> Exchange:
    """One request straight into the ASGI app; `chunks` is the body as the client streams it
    (pulled lazily, so an endless stream is only as long as what the app reads)."""
    done = Exchange()
    pending = iter(chunks)
    upcoming = next(pending, None)

    async def receive() -> Message:
        nonlocal upcoming
        if upcoming is None:
            return {"type": "http.disconnect"}
        chunk, upcoming = upcoming, next(pending, None)
        done.pulled += len(chunk)
        assert done.pulled <= 2 * HUGE, "the app read an endless body"
        return {"type": "http.request", "body": chunk, "more_body": upcoming is not None}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            done.status = message["status"]
            done.headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            done.body += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
        "state": {},
    }
    await app(scope, receive, send)
    return done


def exchange(
    client: TestClient,
    method: str,
    path: str,
    headers: dict[str, str],
    chunks: Iterator[bytes],
) -> Exchange:
    assert client.portal is not None, "use the client inside its `with` block"
    return client.portal.call(_exchange, client.app, method, API + path, headers, chunks)


def _declared(length: int) -> dict[str, str]:
    return {"content-type": "application/json", "content-length": str(length)}


CHUNKED = {"content-type": "application/json", "transfer-encoding": "chunked"}


UNAUTHENTICATED = {
    "no token": {},
    "unknown token": {"authorization": "Bearer amk_" + "x" * 43},
    "not a bearer token": {"authorization": "Basic YWRtaW46YWRtaW4="},
}


@pytest.mark.parametrize("framing", ["declared", "chunked"])
def test_a_body_without_a_valid_token_is_401_before_any_of_it_is_read(
    client: TestClient, world: World, framing: str
) -> None:
    wrong = []
    for who, auth in UNAUTHENTICATED.items():
        headers = {**auth, **(_declared(HUGE) if framing == "declared" else CHUNKED)}
        done = exchange(client, "POST", "/incidents", headers, _endless())
        print(f"\nS6 {framing} body, {who}: {done.status}, {done.pulled} bytes read")
        if done.status != 401 or done.pulled != 0:
            wrong.append(f"{who}: {done.status} after reading {done.pulled} bytes")
        elif done.headers.get("www-authenticate") != "Bearer" or b'"detail"' not in done.body:
            wrong.append(f"{who}: 401 without WWW-Authenticate or detail: {done.body[:100]!r}")
        elif done.headers.get("connection") != "close":
            wrong.append(f"{who}: the connection is kept for a body nobody will read")
    assert wrong == []


def test_a_declared_length_over_the_cap_is_413_before_any_of_it_is_read(
    client: TestClient, world: World
) -> None:
    headers = {**world.headers("manager", "nairobi"), **_declared(HUGE)}
    done = exchange(client, "POST", "/incidents", headers, _endless())
    print(f"\nS6 declared {HUGE} bytes with a token: {done.status}, {done.pulled} bytes read")
    assert (done.status, done.pulled) == (413, 0), done.body
    assert str(DEFAULT_CAP) in done.body.decode()
    assert done.headers.get("connection") == "close"


def test_a_streamed_body_is_cut_off_as_soon_as_it_passes_the_cap(
    client: TestClient, world: World
) -> None:
    headers = {**world.headers("manager", "nairobi"), **CHUNKED}
    done = exchange(client, "POST", "/incidents", headers, _endless(chunk=4096))
    print(f"\nS6 endless chunked body with a token: {done.status}, {done.pulled} bytes read")
    assert done.status == 413, done.body
    assert DEFAULT_CAP < done.pulled <= DEFAULT_CAP + 4096


def test_deep_nesting_is_401_without_a_token_and_400_with_one(
    client: TestClient, world: World
) -> None:
    deep = b"[" * 300_000 + b"]" * 300_000
    done = exchange(client, "POST", "/incidents", _declared(len(deep)), iter([deep]))
    assert (done.status, done.pulled) == (401, 0), done.body

    nested = b'{"title": ' + b"[" * 64 + b"]" * 64 + b"}"
    r = client.post(
        f"{API}/incidents",
        content=nested,
        headers={**world.headers("manager", "nairobi"), "content-type": "application/json"},
    )
    assert r.status_code == 400, r.text
    assert "nested deeper than 32" in r.json()["detail"]


def _route_for(template: str) -> str:
    """A concrete path for a cap's route template."""
    ids = {"claim_id": "1", "city_id": "1", "incident_type": "wildfire"}
    return re.sub(r"{(\w+)}", lambda m: ids[m.group(1)], template)


@pytest.mark.parametrize(
    ("method", "template", "cap"),
    [*((m, t, c) for (m, t), c in BODY_CAPS.items()), ("POST", "/incidents", DEFAULT_CAP)],
)
def test_each_route_takes_a_body_up_to_its_cap_and_not_a_byte_more(
    client: TestClient, world: World, method: str, template: str, cap: int
) -> None:
    path = _route_for(template)
    token = world.headers("admin")  # the gate only asks for a valid token
    json_ = {"content-type": "application/json"}
    for size, expected_413 in [(cap, False), (cap + 1, True)]:
        body = b"{" + b" " * (size - 2) + b"}"  # an empty object, padded
        r = client.request(method, API + path, content=body, headers={**token, **json_})
        assert (r.status_code == 413) == expected_413, (size, r.status_code, r.text[:200])
        assert r.json()["detail"]


def test_the_caps_are_documented_in_the_readme_and_the_openapi(client: TestClient) -> None:
    readme = README.read_text(encoding="utf-8")
    for (method, template), cap in [*BODY_CAPS.items(), (("*", "default"), DEFAULT_CAP)]:
        assert f"{cap // 1024} KiB" in readme, (method, template, cap)
        if method != "*":
            assert f"`{method} {API}{template}`" in readme, (method, template)
    paths: dict[str, Any] = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    for path, operations in paths.items():
        for method, operation in operations.items():
            if path.startswith(API) and "requestBody" in operation:
                assert {"413", "415", "400"} <= set(operation["responses"]), (method, path)
