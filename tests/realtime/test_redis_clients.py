"""Redis clients from a URL: the `redis+sentinel://` form aidmesh documents, read exactly,
refused with a message that names the problem, and a plain URL still reaching its server."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from realtime.redis_clients import (
    SentinelTarget,
    database_number,
    describe,
    is_sentinel_url,
    parse_sentinel_url,
    redis_from_url,
)
from tests.procs import RedisServer


def test_a_full_sentinel_url_names_hosts_service_database_and_both_credentials() -> None:
    url = (
        "redis+sentinel://app:s%40cret@10.0.0.1:26380,10.0.0.2,[::1]:26381/aid-main/3"
        "?sentinel_password=watch&sentinel_username=eye"
    )
    assert parse_sentinel_url(url) == SentinelTarget(
        sentinels=(("10.0.0.1", 26380), ("10.0.0.2", 26379), ("::1", 26381)),
        service_name="aid-main",
        db=3,
        username="app",
        password="s@cret",
        sentinel_username="eye",
        sentinel_password="watch",
    )


def test_a_password_only_sentinel_url_and_its_defaults() -> None:
    target = parse_sentinel_url("redis+sentinel://:pw@h1:26379,h2:26379,h3:26379/mymaster")
    assert target.sentinels == (("h1", 26379), ("h2", 26379), ("h3", 26379))
    assert (target.service_name, target.db, target.username, target.password) == (
        "mymaster",
        0,
        None,
        "pw",
    )
    assert target.sentinel_password is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://h1:26379", "path is /service_name"),
        ("redis+sentinel://h1:26379/a/0/x", "path is /service_name"),
        ("redis+sentinel://h1:26379/mymaster/zero", "database in a Sentinel URL is a number"),
        ("redis+sentinel:///mymaster", "at least one Sentinel host"),
        ("redis+sentinel://h1:99999/mymaster", "invalid port"),
        ("redis+sentinel://h1,:26379/mymaster", "empty host"),
        ("redis+sentinel://h1/mymaster?socket_timeout=1", "unknown Sentinel URL option"),
        ("redis://h1:6379/0", "starts with redis+sentinel://"),
    ],
)
def test_a_malformed_sentinel_url_is_refused_with_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_sentinel_url(url)


def test_the_database_number_and_log_form_of_both_kinds_of_url() -> None:
    assert database_number("redis://127.0.0.1:6379/4") == 4
    assert database_number("redis+sentinel://h1/mymaster/2") == 2
    assert database_number("redis+sentinel://h1/mymaster") == 0
    assert is_sentinel_url("REDIS+SENTINEL://h1/m") and not is_sentinel_url("redis://h1")
    assert "pw" not in describe("redis+sentinel://:pw@h1:1,h2:2/m/1")
    assert "pw" not in describe("redis://:pw@h1:6379/0")


def test_a_plain_url_client_reaches_its_server(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()

    async def run() -> bytes | None:
        client = redis_from_url(server.url)
        try:
            await client.set("aidmesh:test", b"ok")
            value: bytes | None = await client.get("aidmesh:test")
            return value
        finally:
            await client.aclose()

    try:
        assert asyncio.run(run()) == b"ok"
    finally:
        server.stop()
