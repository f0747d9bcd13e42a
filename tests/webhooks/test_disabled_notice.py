"""An endpoint that answers 410 is disabled, and its city's connected pages are told at
once: a `webhook.disabled` notice on the city's websocket scope (not an incident's event:
no seq), while the other city's connections hear nothing of it."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from tests.support import World
from tests.webhooks.conftest import API, declare, register
from tests.webhooks.receiver import Receiver


def _gone(_: int) -> tuple[int, dict[str, str], float]:
    return 410, {}, 0.0


def _subscribe(ws: Any, token: str, scope: str) -> None:
    ws.send_json({"op": "auth", "token": token})
    assert ws.receive_json()["type"] == "welcome"
    ws.send_json({"op": "subscribe", "scopes": [scope]})
    while (message := ws.receive_json())["type"] != "subscribed":
        assert message["type"] in ("event", "heartbeat"), message


def test_a_disabled_endpoint_is_announced_to_its_city(
    hook_client: TestClient, world: World, receiver: Receiver
) -> None:
    receiver.behaviours["/gone"] = _gone
    endpoint = register(hook_client, world, receiver.url("/gone"))
    nairobi, thika = world.city_ids["nairobi"], world.city_ids["thika"]
    with (
        hook_client.websocket_connect("/ws") as own,
        hook_client.websocket_connect("/ws") as other,
    ):
        _subscribe(own, world.token("manager", "nairobi"), f"city:{nairobi}")
        _subscribe(other, world.token("manager", "thika"), f"city:{thika}")
        started = time.monotonic()
        declare(hook_client, world, "Gone receiver flood", 0)
        notice = None
        for _ in range(50):
            message = own.receive_json()
            if message["type"] == "notice":
                notice = message["notice"]
                break
        assert notice is not None, "no notice on the city's scope"
        waited = time.monotonic() - started
        assert notice["kind"] == "webhook.disabled"
        assert notice["city_id"] == nairobi and notice["endpoint_id"] == endpoint["id"]
        assert "410" in notice["reason"] and notice["url"] == receiver.url("/gone")
        # The record behind the notice: the endpoint's status and reason.
        shown = hook_client.get(
            f"{API}/webhooks/{endpoint['id']}", headers=world.headers("manager", "nairobi")
        ).json()
        assert shown["status"] == "disabled" and shown["status_reason"] == notice["reason"]
        # Thika's manager hears nothing of Nairobi's endpoint: a ping is the next frame.
        other.send_json({"op": "ping", "ref": "p"})
        while (message := other.receive_json())["type"] != "pong":
            assert message["type"] != "notice", message
        print(f"\nwebhook.disabled notice: {waited * 1000:.0f} ms after the event")
