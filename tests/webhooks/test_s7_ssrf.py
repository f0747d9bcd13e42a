"""RELIABILITY S7: an endpoint URL pointing inside is refused at registration in every
spelling, a name that resolves to a public address at registration and to loopback at
send time (DNS rebinding) is refused at send, and a canary server on loopback sees no
request with the default settings."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.domain.webhooks import IpAddress
from service.main import create_app
from service.settings import Settings
from tests.support import World
from tests.webhooks.conftest import API, declare
from tests.webhooks.receiver import Receiver, running


class FlipResolver:
    """A resolver seam: answers `before` until flipped, then `after`."""

    def __init__(self, before: str, after: str) -> None:
        self.answer = ipaddress.ip_address(before)
        self.after = ipaddress.ip_address(after)
        self.lookups = 0

    def flip(self) -> None:
        self.answer = self.after

    async def resolve(self, host: str, port: int) -> list[IpAddress]:
        self.lookups += 1
        return [self.answer]


def spellings(port: int) -> list[str]:
    """Loopback, private, link-local, metadata, CGNAT and unique-local addresses in the
    spellings resolvers accept, userinfo tricks and trailing dots; all at the canary."""
    hosts = [
        "127.0.0.1",
        "127.1",
        "0x7f000001",
        "2130706433",
        "0",
        "0.0.0.0",  # noqa: S104 (an address refused, not bound)
        "017700000001",
        "127.0.0.1.nip",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::]",
        "[0:0:0:0:0:0:0:1]",
        "localhost",
        "localhost.",
        "10.0.0.5",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.254",
        "[fd00::1]",
        "[fe80::1]",
        "[2002:7f00:1::]",
        "224.0.0.1",
        "good@127.0.0.1",
        "good:pw@127.0.0.1",
        "127.0.0.1.",
        "example.com.",
    ]
    urls = [f"https://{host}:{port}/hook" for host in hosts]
    urls += [
        f"http://127.0.0.1:{port}/hook",  # http is off by default
        "https://169.254.169.254/latest/meta-data/",
        f"https://127.0.0.1:{port}#@example.com/",
        f"https://example.com\\@127.0.0.1:{port}/",
        f"https://127.0.0.1%2e:{port}/",
        "ftp://example.com/",
        "https://",
        "example.com/hook",
    ]
    return urls


@pytest.fixture
def canary() -> Iterator[Receiver]:
    with running(Receiver()) as started:
        yield started


@pytest.fixture
def default_client(settings: Settings, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"rate_limit_per_s": 0.0}))) as client:
        yield client


def test_every_inside_spelling_is_refused_at_registration_and_the_canary_sees_nothing(
    default_client: TestClient, world: World, canary: Receiver
) -> None:
    manager = world.headers("manager", "nairobi")
    accepted = []
    refused = 0
    for url in spellings(canary.port):
        response = default_client.post(f"{API}/webhooks", json={"url": url}, headers=manager)
        if response.status_code == 201:
            accepted.append(url)
        else:
            assert response.status_code == 422, (url, response.text)
            assert isinstance(response.json()["detail"], str | list)
            refused += 1
    assert accepted == []
    # Something happening in the city would be delivered to any registered endpoint.
    declare(default_client, world, "flood", requests=1)
    time.sleep(1.5)
    assert canary.received == []
    print(f"\nS7: {refused} spellings refused at registration, canary requests 0")


def test_a_name_rebound_to_loopback_after_registration_is_refused_at_send(
    settings: Settings, world: World, canary: Receiver
) -> None:
    resolver = FlipResolver(before="93.184.216.34", after="127.0.0.1")
    fast = settings.model_copy(
        update={"webhook_allow_http": True, "webhook_poll_interval_s": 0.2, "rate_limit_per_s": 0}
    )
    manager = world.headers("manager", "nairobi")
    with TestClient(create_app(fast, resolver=resolver)) as client:
        url = f"http://hooks.example.org:{canary.port}/hook"
        registered = client.post(f"{API}/webhooks", json={"url": url}, headers=manager)
        assert registered.status_code == 201, registered.text
        endpoint_id = registered.json()["id"]
        resolver.flip()
        declare(client, world, "flood", requests=1)
        deadline = time.monotonic() + 10
        log: list[dict[str, object]] = []
        while time.monotonic() < deadline and not log:
            time.sleep(0.2)
            log = client.get(f"{API}/webhooks/{endpoint_id}/attempts", headers=manager).json()[
                "data"
            ]
        assert log, "no attempt was logged"
        assert all(a["status_code"] is None for a in log)
        assert all("loopback" in str(a["error"]) and a["outcome"] == "retrying" for a in log)
        # Changing the URL checks it again too.
        changed = client.patch(
            f"{API}/webhooks/{endpoint_id}", json={"url": url + "2"}, headers=manager
        )
        assert changed.status_code == 422
    assert canary.received == []
    print(f"\nS7 rebinding: {len(log)} sends refused at send time, {resolver.lookups} lookups")


def test_the_connection_goes_to_the_checked_address_with_the_name_as_host(
    settings: Settings, world: World, canary: Receiver
) -> None:
    """The allow-list lets a named private destination through; the request carries the
    name in Host while the connection goes to the address that was checked."""
    resolver = FlipResolver(before="127.0.0.1", after="127.0.0.1")
    on_premises = settings.model_copy(
        update={
            "webhook_allow_http": True,
            "webhook_allowed_private": ["eoc.city.internal"],
            "webhook_poll_interval_s": 0.2,
            "rate_limit_per_s": 0,
        }
    )
    manager = world.headers("manager", "nairobi")
    with TestClient(create_app(on_premises, resolver=resolver)) as client:
        url = f"http://eoc.city.internal:{canary.port}/hook"
        assert client.post(f"{API}/webhooks", json={"url": url}, headers=manager).status_code == 201
        other = client.post(
            f"{API}/webhooks",
            json={"url": f"http://other.internal:{canary.port}/"},
            headers=manager,
        )
        assert other.status_code == 422 and "loopback" in other.json()["detail"]
        declare(client, world, "flood", requests=0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not canary.received:
            time.sleep(0.1)
    assert canary.received, "nothing arrived"
    assert canary.received[0].headers["host"] == f"eoc.city.internal:{canary.port}"
