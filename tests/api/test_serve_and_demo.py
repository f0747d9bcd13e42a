"""`aidmesh serve` and `aidmesh demo` as real processes: their whole log holds none of the
secrets a session used, they are quiet by default, and a busy port is one clear line
with nothing deleted or written."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.procs import HOST, free_port, scratch_sqlite
from tests.replicas import ROOT, Replica

SERVE_ENV = {
    "AIDMESH_EMBEDDED_REDIS": "false",  # an in-process bus: one replica, fast to start
    "AIDMESH_LOG_LEVEL": "info",
    "AIDMESH_SWEEP_INTERVAL_S": "0.5",
}


@pytest.fixture
def serve_factory(tmp_path: Path) -> Iterator[object]:
    started: list[Replica] = []

    def start(**env: str) -> Replica:
        data_dir = tmp_path / f"serve-{len(started)}"
        replica = Replica(
            f"serve-{len(started)}",
            database_url=scratch_sqlite(data_dir, "aidmesh.db"),
            redis_url="",
            data_dir=data_dir,
            env={**SERVE_ENV, **env},
        )
        started.append(replica)
        replica.start()
        return replica

    yield start
    for replica in started:
        replica.stop()


def _admin_token(replica: Replica) -> str:
    path = replica.data_dir / "admin-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return path.read_text().strip()


def _drive_a_session(replica: Replica, admin: str) -> list[str]:
    """REST and websockets as a careless client would use them; the secrets it used."""
    bearer = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=replica.url, timeout=10, trust_env=False) as http:
        city = http.post(
            "/api/v1/cities",
            headers=bearer,
            json={"slug": "thika", "name": "Thika", "country": "KE", "lat": -1.03, "lon": 37.07},
        )
        assert city.status_code == 201, city.text
        issued = http.post(
            "/api/v1/tokens",
            headers=bearer,
            json={"role": "responder", "city_id": city.json()["id"], "label": "duty"},
        )
        responder = issued.json()["token"]
        # A token in the query string by mistake, and in a header as it should be.
        assert http.get(f"/api/v1/me?token={responder}").status_code == 401
        assert http.get("/api/v1/me", headers={"Authorization": f"Bearer {responder}"}).is_success
        assert (
            http.get(
                "/api/v1/me", headers={"Authorization": "Bearer amk_wrongwrongwrong"}
            ).status_code
            == 401
        )
        ticket = http.post("/api/v1/ws-ticket", headers=bearer).json()["ticket"]
    ws_url = f"ws://{HOST}:{replica.port}/ws"
    with connect(f"{ws_url}?ticket={ticket}") as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "welcome"
    with connect(f"{ws_url}?token={responder}") as ws:  # by mistake: the token in the URL
        ws.send(json.dumps({"op": "auth", "token": responder}))
        assert json.loads(ws.recv(timeout=5))["type"] == "welcome"
    return [admin, responder, ticket, "amk_wrongwrongwrong"]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_servers_whole_log_holds_no_token_or_ticket(serve_factory, log_format: str) -> None:  # type: ignore[no-untyped-def]
    replica = serve_factory(AIDMESH_LOG_FORMAT=log_format)
    admin = _admin_token(replica)
    secrets = _drive_a_session(replica, admin)
    time.sleep(0.5)  # the websocket sessions' lines are written as they end
    replica.stop()
    log = replica.log_text()
    for secret in secrets:
        assert secret not in log, f"a secret is in the log:\n{log}"
        assert secret[4:] not in log, f"a secret's body is in the log:\n{log}"
    assert "/ws?ticket" not in log
    assert str(replica.data_dir / "admin-token") in log  # where the first admin token is
    ready = [line for line in log.splitlines() if "aidmesh ready on" in line]
    assert len(ready) == 1
    if log_format == "json":
        lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        requests = [line for line in lines if line.get("event") == "http.request"]
        sessions = [line for line in lines if line.get("event") == "ws.session"]
        assert {line["path"] for line in requests} >= {"/api/v1/cities", "/api/v1/me"}
        assert [s["status"] for s in sessions] == [101, 101]
        assert {s["role"] for s in sessions} == {"admin", "responder"}
        print(f"{len(requests)} request lines, {len(sessions)} session lines, no secret")


def test_serve_is_quiet_by_default_and_verbose_on_request(serve_factory) -> None:  # type: ignore[no-untyped-def]
    quiet = serve_factory()
    with httpx.Client(base_url=quiet.url, trust_env=False) as http:
        for _ in range(5):
            http.get("/healthz")
    time.sleep(3)  # six sweeps at 0.5 s
    quiet.stop()
    log = quiet.log_text()
    assert "apscheduler" not in log and "Running job" not in log, log
    assert "httpx" not in log and "/healthz" not in log, log
    assert len(log.splitlines()) < 25, log

    verbose = serve_factory(AIDMESH_LOG_LEVEL="debug")
    time.sleep(2)
    verbose.stop()
    assert "apscheduler" in verbose.log_text()


def _holding(port: int) -> socket.socket:
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind((HOST, port))
    holder.listen(8)
    holder.setblocking(False)
    return holder


def _assert_nobody_connected(holder: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        holder.accept()


def _run_cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    output = (done.stdout + done.stderr).strip()
    assert "Traceback" not in output and "Error" not in output, output
    assert len(output.splitlines()) == 1, output
    return output


def test_serve_on_a_busy_port_fails_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    with _holding(port) as holder:
        done = _run_cli(
            ["serve", "--port", str(port)],
            tmp_path,
            {"AIDMESH_DATA_DIR": str(data_dir), "DATABASE_URL": f"sqlite:///{data_dir}/a.db"},
        )
        _assert_nobody_connected(holder)
    assert done.returncode == 1
    line = _one_line(done)
    assert f"cannot listen on {HOST}:{port}" in line and "in use" in line, line
    assert "aidmesh ready" not in line
    assert not data_dir.exists()  # no database, no admin token


def _demo_dir_with_a_running_demos_files(tmp_path: Path) -> dict[str, bytes]:
    demo = tmp_path / "var" / "demo"
    demo.mkdir(parents=True)
    (demo / "aidmesh-demo.db").write_bytes(b"a running demo's database")
    return {p.name: p.read_bytes() for p in demo.iterdir()}


def test_demo_on_a_busy_port_deletes_nothing_and_seeds_nobody(tmp_path: Path) -> None:
    before = _demo_dir_with_a_running_demos_files(tmp_path)
    port = free_port()
    env = {"AIDMESH_DATA_DIR": str(tmp_path / "var")}
    with _holding(port) as holder:
        done = _run_cli(["demo", "--port", str(port)], tmp_path, env)
        _assert_nobody_connected(holder)  # nothing was seeded into the port's holder
    assert done.returncode == 1
    assert f"cannot listen on {HOST}:{port}" in _one_line(done)
    demo = tmp_path / "var" / "demo"
    assert {p.name: p.read_bytes() for p in demo.iterdir()} == before


def test_a_second_demo_from_the_same_directory_leaves_the_first_alone(tmp_path: Path) -> None:
    before = _demo_dir_with_a_running_demos_files(tmp_path)
    with (tmp_path / "var" / "demo.lock").open("ab") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running demo holds it
        done = _run_cli(
            ["demo", "--port", str(free_port())],
            tmp_path,
            {"AIDMESH_DATA_DIR": str(tmp_path / "var")},
        )
    assert done.returncode == 1
    assert "another demo is running" in _one_line(done)
    demo = tmp_path / "var" / "demo"
    assert {p.name: p.read_bytes() for p in demo.iterdir()} == before
