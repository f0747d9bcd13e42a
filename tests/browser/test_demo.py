"""`aidmesh demo` from a fresh directory: it seeds the network, declares the flood, its
simulated responders claim, it prints what to open, and Ctrl-C stops it cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.procs import end, free_port, start


def _wait_for(path: Path, text: str, proc: subprocess.Popen[bytes], timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        output = path.read_text(errors="replace")
        if text in output:
            return output
        assert proc.poll() is None, f"the demo exited early:\n{output}"
        time.sleep(0.1)
    raise AssertionError(f"no {text!r} in the demo's output:\n{path.read_text()}")


def test_demo_seeds_declares_simulates_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "demo.out"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    script = (
        f"from service.demo import run_demo; raise SystemExit(run_demo('127.0.0.1', {port}, 0.5))"
    )
    proc = start([sys.executable, "-c", script], out, env=env, cwd=tmp_path)
    try:
        output = _wait_for(out, "Ctrl-C stops the demo", proc, timeout_s=60)
        base = f"http://127.0.0.1:{port}"
        for page in ("board", "respond", "manage"):
            assert f"{base}/{page}" in output
        observer = re.search(r"observer in Nairobi:\s+(amk_\S+)", output)
        assert observer is not None, output
        headers = {"Authorization": f"Bearer {observer.group(1)}"}
        api = httpx.Client(base_url=f"{base}/api/v1", headers=headers, timeout=10)

        cities = api.get("/cities?limit=100").json()["data"]
        assert len(cities) >= 12
        assert {c["country"] for c in cities} == {"KE", "DE", "ZA"}
        assert {c["name"] for c in cities} >= {"Nairobi", "Munich", "Cape Town", "Tshwane"}
        assert api.get("/networks").json()["count"] == 4

        [flood] = api.get("/incidents").json()["data"]
        assert (flood["incident_type"], flood["exercise"]) == ("flood", True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            detail = api.get(f"/incidents/{flood['id']}").json()
            if detail["claims"]:
                break
            time.sleep(0.5)
        assert len(detail["requests"]) == 9
        assert detail["claims"], "no simulated responder claimed anything"
        assert httpx.get(f"{base}/board").status_code == 200

        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        assert "aidmesh demo: stopped." in out.read_text()
        assert (tmp_path / "var" / "demo" / "aidmesh-demo.db").exists()
    finally:
        end(proc)
