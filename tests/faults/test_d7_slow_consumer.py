"""D7: a client that stops reading while thousands of events flow.

The stalled client is a raw TCP websocket client with a small receive buffer that
authenticates, subscribes and then never reads again. Events are produced quickly:
bursts committed straight against the database through an Executor publishing on the
replicas' Redis, plus REST writes. The replica must drop the stalled client
(close 1013) and let go of it, while a normal client on the same replica receives
every event, with a receive latency close to the one it has without the stalled
client (both printed).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from realtime.redis_bus import RedisBus
from service.commands.context import CommandContext, lock_incident
from service.domain.events import EventType
from service.executor import Executor, utc_now
from tests.history import History, check, load_truth, percentile
from tests.realtime.live_client import (
    LiveClient,
    Rest,
    caught_up,
    produce,
    setup_incidents,
    wait_until,
)
from tests.replicas import Cluster, Replica, cluster_fixture

cluster = cluster_fixture(replicas=1)

BURST = 100  # events per transaction
PAD = 1500  # bytes of padding per event: ~1.9 KB on the wire
BASELINE_EVENTS = 1600
FLOOD_EVENTS = 10_000
RELEASE_S = 15.0  # the replica must let go of the dropped client within this


def emit_burst(ctx: CommandContext, incident_id: int, count: int, pad: int) -> int:
    """`count` small events in one transaction, recorded the way every command records them."""
    incident = lock_incident(ctx.session, incident_id)
    for n in range(count):
        ctx.emit(
            incident,
            EventType.CLAIM_REMINDER,
            {"burst": n, "note": "x" * pad},
            cities=[incident.city_id],
        )
    return count


def _masked_text_frame(text: str) -> bytes:
    data, mask = text.encode(), os.urandom(4)
    size = len(data)
    head = bytes([0x81]) + (
        bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + struct.pack("!H", size)
    )
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


@dataclass
class Drained:
    text_frames: int = 0
    close_code: int | None = None
    close_reason: str = ""
    ended: str = ""  # "eof", "reset" or "timeout"
    bytes_read: int = 0
    frames: list[int] = field(default_factory=list)


class StalledClient:
    """A websocket client over a raw socket that, once subscribed, reads nothing."""

    def __init__(self, replica: Replica, token: str, scopes: list[str], rcvbuf: int = 4096):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", replica.port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{replica.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert b" 101 " in head.split(b"\r\n")[0], head
        self.sock.sendall(_masked_text_frame(orjson.dumps({"op": "auth", "token": token}).decode()))
        self.sock.sendall(
            _masked_text_frame(orjson.dumps({"op": "subscribe", "scopes": scopes}).decode())
        )

    def drain(self, timeout_s: float = 3.0) -> Drained:
        """Read everything the replica managed to send, and how the stream ended."""
        self.sock.settimeout(timeout_s)
        data = bytearray()
        drained = Drained()
        try:
            while chunk := self.sock.recv(1 << 16):
                data += chunk
            drained.ended = "eof"
        except TimeoutError:
            drained.ended = "timeout"
        except ConnectionResetError:
            drained.ended = "reset"
        drained.bytes_read = len(data)
        at = 0
        while at + 2 <= len(data):
            opcode, size = data[at] & 0x0F, data[at + 1] & 0x7F
            at += 2
            if size == 126:
                size = struct.unpack("!H", data[at : at + 2])[0]
                at += 2
            elif size == 127:
                size = struct.unpack("!Q", data[at : at + 8])[0]
                at += 8
            payload = bytes(data[at : at + size])
            at += size
            drained.frames.append(opcode)
            if opcode == 0x1:
                drained.text_frames += 1
            elif opcode == 0x8 and drained.close_code is None and len(payload) >= 2:
                drained.close_code = struct.unpack("!H", payload[:2])[0]
                drained.close_reason = payload[2:].decode(errors="replace")
        return drained

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


async def _flood(
    executor: Executor, rest: Rest, cluster: Cluster, incidents: dict[int, int], events: int
) -> float:
    """`events` events from bursts straight against the database, plus REST writes meanwhile."""
    actor = cluster.actor("manager", "nairobi")
    manager = cluster.headers("manager", "nairobi")
    responder = cluster.headers("responder", "thika")
    per_incident = events // BURST // len(incidents)
    stop = asyncio.Event()

    async def bursts(incident_id: int) -> None:
        for _ in range(per_incident):
            await executor.run(actor, emit_burst, incident_id, BURST, PAD)

    async def writes() -> None:
        while not stop.is_set():
            await produce(rest, manager, responder, incidents, 4, workers=2, pause_s=0.02)

    started = time.monotonic()
    rest_load = asyncio.ensure_future(writes())
    try:
        await asyncio.gather(*(bursts(i) for i in incidents))
    finally:
        stop.set()
        await rest_load
    return time.monotonic() - started


@pytest.mark.slow
def test_a_client_that_stops_reading_is_dropped_while_a_normal_client_gets_everything(
    cluster: Cluster,
) -> None:
    replica = cluster.replicas[0]
    figures: dict[str, Any] = {}

    async def scenario() -> tuple[History, Drained | None, list[float]]:
        history = History()
        rest = Rest([replica.url], history)
        incidents = await setup_incidents(rest, cluster.headers("manager", "nairobi"), 4, "d7")
        scopes = [f"incident:{i}" for i in incidents]
        bus = RedisBus(cluster.redis_url)
        executor = Executor(
            cluster.executor.db,
            bus,
            cluster.executor.settings,
            cluster.executor.catalogue,
            cluster.executor.playbooks,
            utc_now,
        )
        normal = LiveClient(
            "normal",
            [replica.ws_url],
            cluster.token("observer", "thika"),
            scopes,
            history,
            rotate=False,
            record_latency=True,
            # Latency of the REST writes' events: one event per transaction, so the time
            # from commit to receipt, not the time a burst takes to be written.
            latency_of=lambda event: event["type"] != EventType.CLAIM_REMINDER.value,
        ).start()
        stalled: StalledClient | None = None
        drained = None
        try:
            assert await wait_until(lambda: normal.live.is_set(), 15)
            # Baseline: the normal client alone under the same kind of load.
            took = await _flood(executor, rest, cluster, incidents, BASELINE_EVENTS)
            truth = load_truth(cluster.database_url, incidents)
            assert await caught_up([normal], truth.last_seq, 30)
            baseline = list(normal.log.latencies_s)
            figures["baseline events/s"] = round(BASELINE_EVENTS / took)
            normal.log.latencies_s.clear()

            stalled = StalledClient(replica, cluster.token("observer", "thika"), scopes)
            assert await wait_until(
                lambda: replica.metrics().get("aidmesh_ws_connections") == 2, 10, 0.1
            )
            rss_before = replica.rss()
            dropped_before = replica.metrics().get("aidmesh_ws_slow_consumers_dropped_total", 0)
            took = await _flood(executor, rest, cluster, incidents, FLOOD_EVENTS)
            figures["flood events/s"] = round(FLOOD_EVENTS / took)
            truth = load_truth(cluster.database_url, incidents)
            assert await caught_up([normal], truth.last_seq, 30)
            flood_done = time.monotonic()
            samples = replica.metrics()
            figures["dropped as slow"] = (
                samples.get("aidmesh_ws_slow_consumers_dropped_total", 0) - dropped_before
            )
            released = await wait_until(
                lambda: replica.metrics().get("aidmesh_ws_connections") == 1, RELEASE_S, 0.25
            )
            figures["stalled client released"] = (
                f"after {time.monotonic() - flood_done:.1f}s"
                if released
                else f"not in {RELEASE_S:.0f}s"
            )
            figures["rss growth MB"] = round((replica.rss() - rss_before) / 1e6, 1)
            drained = await asyncio.to_thread(stalled.drain)
        finally:
            if stalled is not None:
                stalled.close()
            await normal.stop()
            await executor.aclose()
            await bus.close()
            await rest.aclose()
        return history, drained, baseline

    history, drained, baseline = asyncio.run(scenario())
    incidents = {i for i, _, _ in history.clients["normal"].events}
    summary = check(history, load_truth(cluster.database_url, incidents))
    flood = history.clients["normal"].latencies_s
    for name, values in (("baseline", baseline), ("with stalled client", flood)):
        ms = [v * 1000 for v in values]
        figures[f"normal p50/p99 ms {name}"] = (
            round(percentile(ms, 0.5), 1),
            round(percentile(ms, 0.99), 1),
        )
    if drained is not None:
        figures["stalled client read"] = (
            f"{drained.text_frames} frames, {drained.bytes_read} bytes, close"
            f" {drained.close_code} {drained.close_reason!r}, then {drained.ended}"
        )
    figures["normal client closes"] = history.clients["normal"].closes
    print(f"\nD7 stalled client: {figures}\n{summary}")

    # The normal client: everything, in order, never dropped itself.
    assert summary.complete, summary
    assert summary.duplicates == 0, summary
    assert not [c for c in history.clients["normal"].closes if c[0] == 1013], figures
    assert history.clients["normal"].connects == 1, figures
    # The stalled client: dropped as a slow consumer, with a close 1013 behind what it was
    # sent, or disconnected outright (no close frame at all).
    assert figures["dropped as slow"] >= 1, figures
    assert drained is not None
    closed_slow = drained.close_code == 1013
    cut_off = drained.close_code is None and drained.ended in ("eof", "reset")
    assert closed_slow or cut_off, figures
    assert figures["rss growth MB"] < 50, figures
    # And let go of: no socket, task or queue kept for a client that reads nothing.
    assert figures["stalled client released"].startswith("after"), figures
