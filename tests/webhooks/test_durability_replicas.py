"""Durability: two replicas deliver one endpoint's events; the one holding its lease is
killed with SIGKILL mid-delivery. The other takes the lease over when it runs out and the
receiver ends with every event at least once, none missing; duplicates are counted."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import httpx

from tests.replicas import cluster
from tests.webhooks.receiver import Receiver, running

ENV = {
    "AIDMESH_WEBHOOK_ALLOW_HTTP": "true",
    "AIDMESH_WEBHOOK_ALLOWED_PRIVATE": json.dumps(["127.0.0.1/32"]),
    "AIDMESH_WEBHOOK_LEASE_S": "2",
    "AIDMESH_WEBHOOK_POLL_INTERVAL_S": "0.2",
    "AIDMESH_WEBHOOK_RETRY_BASE_S": "0.2",
    "AIDMESH_WEBHOOK_TIMEOUT_S": "2",
}


def _slowly(_: int) -> tuple[int, dict[str, str], float]:
    return 200, {}, 0.03  # a receiver that takes its time, so the kill lands mid-delivery


def _holds(url: str, endpoint_id: int) -> bool:
    text = httpx.get(f"{url}/metrics", timeout=5, trust_env=False).text
    return re.search(rf'aidmesh_webhook_queue_depth{{endpoint="{endpoint_id}"}}', text) is not None


def test_killing_the_delivering_replica_loses_no_event(tmp_path: Path) -> None:
    with cluster(tmp_path, replicas=2, env=ENV) as built, running(Receiver()) as receiver:
        receiver.behaviours["/hook"] = _slowly
        first, second = built.replicas
        manager = built.headers("manager", "nairobi")
        api = f"{first.url}/api/v1"
        registered = httpx.post(
            f"{api}/webhooks",
            json={"url": receiver.url("/hook")},
            headers=manager,
            trust_env=False,
        )
        assert registered.status_code == 201, registered.text
        endpoint_id = registered.json()["id"]
        expected = 0
        for n in range(4):
            incident = httpx.post(
                f"{api}/incidents",
                json={"incident_type": "flood", "title": f"flood {n}", "severity": "severe"},
                headers=manager,
                trust_env=False,
            ).json()["id"]
            expected += 1
            for q in range(1, 31):
                raised = httpx.post(
                    f"{api}/incidents/{incident}/requests",
                    json={"resource": "high-capacity-pump", "quantity": q, "priority": "high"},
                    headers=manager,
                    trust_env=False,
                )
                assert raised.status_code == 201
                expected += 1

        deadline = time.monotonic() + 20
        while len(receiver.received) < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        holder = next((r for r in (first, second) if _holds(r.url, endpoint_id)), None)
        assert holder is not None, "no replica reports holding the endpoint"
        before_kill = len(receiver.received)
        holder.kill(signal.SIGKILL)
        killed_at = time.monotonic()

        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            if len({r.event_id for r in receiver.received}) >= expected:
                break
            time.sleep(0.1)
        ids = [r.event_id for r in receiver.received]
        unique = set(ids)
        assert len(unique) == expected, built.logs()
        survivor = second if holder is first else first
        # The survivor takes the endpoint over once the dead replica's lease runs out; if the
        # killed replica had sent everything already, that happens after the last arrival.
        deadline = time.monotonic() + 15
        while not _holds(survivor.url, endpoint_id) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _holds(survivor.url, endpoint_id), "the survivor never took the endpoint over"
        # Order per incident held across the takeover (first arrival of each event).
        assert receiver.seq_order_broken() is None
        print(
            f"\ndurability: {expected} events, {before_kill} received before kill -9 of "
            f"{holder.name}, all {len(unique)} received after "
            f"{time.monotonic() - killed_at:.1f} s, {len(ids) - len(unique)} duplicates"
        )
