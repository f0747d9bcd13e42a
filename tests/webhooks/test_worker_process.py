"""`aidmesh webhooks`: delivery in processes of their own, beside a replica that delivers
nothing (AIDMESH_WEBHOOKS_ENABLED=false). Two workers share the endpoints through their
leases; each event arrives at least once and in order per incident; the workers run at a
lower CPU priority and serve their own metrics; SIGTERM hands an endpoint over at once
(the lease is let go, not left to run out); without the replicas' Redis the command
refuses to start and says why."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests import procs
from tests.replicas import ROOT, Cluster, cluster
from tests.webhooks.receiver import Receiver, running

ENV = {
    "AIDMESH_WEBHOOK_ALLOW_HTTP": "true",
    "AIDMESH_WEBHOOK_ALLOWED_PRIVATE": json.dumps(["127.0.0.1/32"]),
    # Long enough that a handover within it can only come from the lease being let go.
    "AIDMESH_WEBHOOK_LEASE_S": "30",
    "AIDMESH_WEBHOOK_POLL_INTERVAL_S": "0.2",
    "AIDMESH_WEBHOOK_RETRY_BASE_S": "0.2",
    "AIDMESH_WEBHOOK_TIMEOUT_S": "2",
    "AIDMESH_LOG_LEVEL": "info",
}


class Worker:
    """One `aidmesh webhooks` process, ended by its PID."""

    def __init__(self, built: Cluster, name: str) -> None:
        self.name = name
        self.metrics_port = procs.free_port()
        self.log_path = built.tmp / f"{name}.log"
        env = {
            **os.environ,
            **ENV,
            "DATABASE_URL": built.database_url,
            "REDIS_URL": built.redis_url,
            "AIDMESH_DATA_DIR": str(built.tmp / name),
            "PYTHONUNBUFFERED": "1",
        }
        self.proc = procs.start(
            [
                sys.executable,
                "-m",
                "service.cli",
                "webhooks",
                "--metrics-port",
                str(self.metrics_port),
            ],
            self.log_path,
            env=env,
            cwd=ROOT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while "webhook worker ready" not in self.log():
            assert self.proc.poll() is None, f"{self.name} exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"{self.name} never got ready:\n{self.log()}"
            time.sleep(0.1)

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        return httpx.get(url, timeout=5, trust_env=False).text

    def holds(self, endpoint_id: int) -> bool:
        pattern = rf'aidmesh_webhook_queue_depth{{endpoint="{endpoint_id}"}}'
        return re.search(pattern, self.metrics()) is not None

    def delivered(self) -> float:
        found = re.search(
            r'aidmesh_webhook_deliveries_total{outcome="delivered"} (\S+)', self.metrics()
        )
        return float(found.group(1)) if found else 0.0

    def end(self) -> None:
        procs.end(self.proc)


@contextmanager
def workers(built: Cluster, count: int) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    try:
        for n in range(count):
            started.append(Worker(built, f"webhooks-{n}"))
        for worker in started:
            worker.wait_ready()
        yield started
    finally:
        for worker in started:
            worker.end()


def _raise(api: str, headers: dict[str, str], title: str, requests: int) -> int:
    """Declare an incident and raise `requests` requests; returns the events it made."""
    incident = httpx.post(
        f"{api}/incidents",
        json={"incident_type": "flood", "title": title, "severity": "severe"},
        headers=headers,
        trust_env=False,
    )
    assert incident.status_code == 201, incident.text
    for q in range(1, requests + 1):
        raised = httpx.post(
            f"{api}/incidents/{incident.json()['id']}/requests",
            json={"resource": "high-capacity-pump", "quantity": q, "priority": "high"},
            headers=headers,
            trust_env=False,
        )
        assert raised.status_code == 201, raised.text
    return 1 + requests


def _wait_for(receiver: Receiver, count: int, timeout_s: float) -> set[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        unique = {r.event_id for r in receiver.received}
        if len(unique) >= count:
            return unique
        time.sleep(0.05)
    return {r.event_id for r in receiver.received}


def test_worker_processes_deliver_for_a_replica_that_does_not(tmp_path: Path) -> None:
    env = {**ENV, "AIDMESH_WEBHOOKS_ENABLED": "false"}
    with (
        cluster(tmp_path, replicas=1, env=env) as built,
        running(Receiver()) as receiver,
        workers(built, 2) as (first, second),
    ):
        replica = built.replicas[0]
        api = f"{replica.url}/api/v1"
        manager = built.headers("manager", "nairobi")
        registered = httpx.post(
            f"{api}/webhooks",
            json={"url": receiver.url("/hook")},
            headers=manager,
            trust_env=False,
        )
        assert registered.status_code == 201, registered.text
        endpoint_id = registered.json()["id"]

        # Both run below the replicas' CPU priority (the default --nice 10).
        for worker in (first, second):
            assert os.getpriority(os.PRIO_PROCESS, worker.proc.pid) >= 10

        expected = sum(_raise(api, manager, f"flood {n}", 10) for n in range(3))
        unique = _wait_for(receiver, expected, 30)
        assert len(unique) == expected, (first.log(), second.log())
        assert receiver.seq_order_broken() is None
        # The replica delivered none of it; the workers' own metrics count the deliveries.
        assert (
            "aidmesh_webhook_deliveries_total{"
            not in httpx.get(f"{replica.url}/metrics", trust_env=False).text
        )
        assert first.delivered() + second.delivered() >= expected

        # One worker holds the endpoint; SIGTERM makes it let go and the other takes over
        # well within the 30 s lease.
        deadline = time.monotonic() + 10
        holder = None
        while holder is None and time.monotonic() < deadline:
            holder = next((w for w in (first, second) if w.holds(endpoint_id)), None)
            time.sleep(0.1)
        assert holder is not None, "neither worker reports holding the endpoint"
        other = second if holder is first else first
        os.kill(holder.proc.pid, signal.SIGTERM)
        assert holder.proc.wait(15) == 0, holder.log()
        assert "webhook worker stopped" in holder.log()
        stopped_at = time.monotonic()

        expected += _raise(api, manager, "flood after the handover", 5)
        unique = _wait_for(receiver, expected, 20)
        assert len(unique) == expected, other.log()
        assert other.holds(endpoint_id)
        handover_s = time.monotonic() - stopped_at
        assert handover_s < 20
        assert receiver.seq_order_broken() is None
        duplicates = len(receiver.received) - len(unique)
        print(
            f"\nworker processes: {expected} events delivered by 2 workers, none by the "
            f"replica; after SIGTERM of {holder.name} the other delivered within "
            f"{handover_s:.1f} s (lease 30 s); {duplicates} duplicates"
        )


def test_the_worker_refuses_to_start_without_the_replicas_redis(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "AIDMESH_REDIS_URL")}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'aidmesh.db'}", AIDMESH_DATA_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "webhooks", "--metrics-port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "AIDMESH_REDIS_URL" in done.stderr
