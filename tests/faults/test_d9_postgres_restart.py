"""D9: PostgreSQL restarted (`pg_ctl restart -m immediate`) while claims are flowing.

The database is a private PostgreSQL cluster this test creates (initdb) on a free
loopback port, so restarting it disturbs nothing else. A replica serves 24 claimers;
each retries a refused or unanswered claim with the same Idempotency-Key until it is
acknowledged. What must hold: while the database is down a request ends quickly
(a 503 with Retry-After, not a hang); every acknowledged claim is in the database
once; a key retried across the outage has one effect; the request's claimed
quantity is exactly the sum of its claims.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.procs import free_port
from tests.realtime.live_client import API
from tests.replicas import cluster
from tests.support import missing, postgres_url

CLAIMERS = 24
RUN_S = 12.0
RESTART_AT_S = 4.0
SLOW_ANSWER_S = 8.0  # no request may take longer than this, outage or not


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1, run as the `postgres` user when root."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        binary = shutil.which("initdb")
        self.bindir = Path(found[-1]).parent if found else Path(binary).parent if binary else None
        self.base = Path(tempfile.mkdtemp(prefix="aidmesh-pg-"))
        self.data = self.base / "data"
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert self.bindir is not None
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=check)

    def start(self) -> None:
        if self.bindir is None:
            missing("D9 needs PostgreSQL's server binaries (initdb, pg_ctl)")
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
        self.base.chmod(0o755)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.base} "
            "-c fsync=off -c max_connections=100"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")

    @property
    def log(self) -> Path:
        return self.base / "postgres.log"

    def restart_immediately(self) -> float:
        """`pg_ctl restart -m immediate`; returns how long until it accepted connections."""
        began = time.monotonic()
        # -l again: without it the postmaster would write to (and hold open) our pipes.
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", "immediate", "-w", "restart"
        )
        return time.monotonic() - began

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop", check=False)
            pid = self.postmaster_pid()
            if pid is not None:  # pg_ctl could not stop it: end it by its PID
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def private_postgres(monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivatePostgres]:
    if postgres_url() is None:
        missing("D9 runs with the PostgreSQL suite (DATABASE_URL set)")
    server = PrivatePostgres()
    try:
        server.start()
        # The cluster helper makes its scratch database on the server at DATABASE_URL.
        monkeypatch.setenv("DATABASE_URL", server.url)
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_a_postgres_restart_under_load_gives_fast_503s_and_loses_no_acknowledged_claim(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    with cluster(tmp_path, replicas=1) as built:
        replica = built.replicas[0]
        manager = built.headers("manager", "nairobi")
        responder = built.headers("responder", "thika")
        figures: dict[str, object] = {}

        async def scenario() -> tuple[str, dict[str, int], Counter[str], list[float]]:
            async with httpx.AsyncClient(
                base_url=replica.url, timeout=30.0, trust_env=False
            ) as http:
                declare = {"incident_type": "flood", "title": "d9"}
                r = await http.post(f"{API}/incidents", json=declare, headers=manager)
                assert r.status_code == 201, r.text
                r = await http.post(
                    f"{API}/incidents/{r.json()['id']}/requests",
                    json={"resource": "high-capacity-pump", "quantity": 10_000},
                    headers=manager,
                )
                assert r.status_code == 201, r.text
                request_id = r.json()["id"]

                acknowledged: dict[str, int] = {}  # key -> claim id
                statuses: Counter[str] = Counter()
                slowest: list[float] = []
                stop_at = time.monotonic() + RUN_S

                async def claimer(n: int) -> None:
                    while time.monotonic() < stop_at:
                        key = f"d9-{n}-{uuid.uuid4().hex[:8]}"
                        # The same key until acknowledged, as a client must retry.
                        while True:
                            began = time.monotonic()
                            try:
                                r = await http.post(
                                    f"{API}/requests/{request_id}/claims",
                                    json={"quantity": 1},
                                    headers={**responder, "Idempotency-Key": key},
                                )
                                status = str(r.status_code)
                            except httpx.TransportError as exc:
                                status = type(exc).__name__
                                r = None
                            slowest.append(time.monotonic() - began)
                            statuses[status] += 1
                            if r is not None and r.status_code == 201:
                                acknowledged[key] = r.json()["id"]
                                break
                            await asyncio.sleep(0.2)

                async def restart() -> None:
                    await asyncio.sleep(RESTART_AT_S)
                    figures["restart took s"] = round(
                        await asyncio.to_thread(private_postgres.restart_immediately), 2
                    )

                await asyncio.gather(restart(), *(claimer(n) for n in range(CLAIMERS)))
                return str(request_id), acknowledged, statuses, slowest

        request_id, acknowledged, statuses, slowest = asyncio.run(scenario())

        with psycopg.connect(built.database_url) as conn:
            claimed = conn.execute(
                "select claimed_quantity from aid_requests where id = %s", (int(request_id),)
            ).fetchone()
            rows = conn.execute(
                "select idempotency_key, id, quantity from claims where request_id = %s",
                (int(request_id),),
            ).fetchall()
        per_key = Counter(key for key, _, _ in rows)
        stored = {key: claim_id for key, claim_id, _ in rows}
        lost = [k for k, claim_id in acknowledged.items() if stored.get(k) != claim_id]
        doubled = [k for k, count in per_key.items() if count > 1]
        unanswered = set(stored) - set(acknowledged)
        figures.update(
            {
                "statuses": dict(statuses),
                "acknowledged claims": len(acknowledged),
                "claims stored": len(rows),
                "lost": len(lost),
                "double claims": len(doubled),
                "slowest answer s": round(max(slowest), 2),
                "claimed_quantity": claimed[0] if claimed else None,
            }
        )
        print(f"\nD9 PostgreSQL restart under load: {figures}")

        assert (
            statuses.get("503", 0) + sum(n for s, n in statuses.items() if not s.isdigit()) > 0
        ), "the restart was not seen: no 503 and no dropped request"
        assert lost == [], f"acknowledged claims missing from the database: {lost[:5]}"
        assert doubled == [], f"keys with more than one claim: {doubled[:5]}"
        # Every claim stored was acknowledged to its claimer (every claimer retried to the end).
        assert unanswered == set(), unanswered
        assert claimed is not None and claimed[0] == sum(q for _, _, q in rows)
        assert not [s for s in statuses if s.isdigit() and s not in ("201", "503")], statuses
        assert max(slowest) < SLOW_ANSWER_S, f"a request took {max(slowest):.1f} s"
