"""Processes, servers and bookkeeping shared by every benchmark.

Servers are started by `tests.procs` (the one place that starts, waits for and ends a
process, shared with the tests); `PROCS` also tracks the load generators'
multiprocessing children, and once installed ends every child by its PID (SIGCONT,
SIGTERM, then SIGKILL) when the run ends, on an error, on Ctrl-C or on SIGTERM.
Everything binds to 127.0.0.1.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import multiprocessing as mp
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.procs import (
    HOST,
    RedisServer,
    end,
    end_all,
    free_port,
    rss_bytes,
    start,
    wait_until_healthy,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# Processes ------------------------------------------------------------------------------


class ProcessRegistry:
    """Every child this run started, ended by PID when the run ends: the servers (through
    `tests.procs.start`) and the load generators' multiprocessing children."""

    def __init__(self) -> None:
        self._mp: list[mp.process.BaseProcess] = []
        self._installed = False

    def install(self) -> None:
        if self._installed:
            return
        self._installed = True
        atexit.register(self.stop_all)

        def on_term(signum: int, _frame: Any) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        signal.signal(signal.SIGTERM, on_term)

    def track(self, proc: mp.process.BaseProcess) -> None:
        self._mp.append(proc)

    def end_mp(self, proc: mp.process.BaseProcess, grace_s: float = 5.0) -> None:
        if proc.is_alive() and proc.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            proc.join(grace_s)
            if proc.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.join(5)
        with contextlib.suppress(ValueError):
            self._mp.remove(proc)

    def stop_all(self) -> None:
        for mproc in list(self._mp):
            self.end_mp(mproc, grace_s=2)
        end_all(grace_s=5)


PROCS = ProcessRegistry()


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1_048_576
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (Linux /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def postgres_cpu_seconds() -> float:
    """User + system CPU time of the PostgreSQL processes alive now (a local server only;
    a backend that has exited no longer counts, so measure while connections are open)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    total += cpu_seconds(int(entry.name))
            except OSError:
                continue
    return total


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in parts[:8]]
    idle = values[3] + values[4]
    total = sum(values)
    return (total - idle) / CLK_TCK, total / CLK_TCK


# Servers ----------------------------------------------------------------------------------


def redis_server(data_dir: Path) -> RedisServer:
    """A private redis-server for one run, with room for every load generator's client."""
    return RedisServer(data_dir, extra_args=("--maxclients", "1000"))


# What every replica runs with in a benchmark: the scheduler off (no sweeps in the
# measurements), a pool that keeps two replicas inside PostgreSQL's max_connections,
# per-token REST rate limits out of the way of the load generators.
REPLICA_ENV = {
    "AIDMESH_SCHEDULER_ENABLED": "false",
    "AIDMESH_LOG_LEVEL": "warning",
    "AIDMESH_DB_POOL_SIZE": "8",
    "AIDMESH_RATE_LIMIT_PER_S": "1000000",
    "AIDMESH_RATE_LIMIT_BURST": "1000000",
}


@dataclass
class Server:
    """One HTTP/websocket server process on its own port (an aidmesh replica or the naive app)."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    health_path: str = "/healthz"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/ws"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def spawn(self) -> None:
        self.proc = start(
            [*self.args, "--port", str(self.port)],
            self.log_path,
            env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
            cwd=ROOT,
        )

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        assert self.proc is not None
        wait_until_healthy(
            self.proc,
            self.url,
            self.log_path,
            path=self.health_path,
            timeout_s=timeout_s,
            name=self.name,
        )

    def stop(self) -> None:
        end(self.proc)

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def metrics(self) -> dict[str, float]:
        samples: dict[str, float] = {}
        try:
            text = httpx.get(self.url + "/metrics", timeout=5.0, trust_env=False).text
        except httpx.HTTPError:
            return samples
        for line in text.splitlines():
            if not line or line.startswith("#") or "{" in line:
                continue
            name, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                samples[name] = float(value)
        return samples


def aidmesh_replica(
    name: str, *, database_url: str, redis_url: str, work: Path, **env: str
) -> Server:
    return Server(
        name=name,
        args=[sys.executable, "-m", "service.cli", "serve"],
        env={
            **REPLICA_ENV,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "AIDMESH_DATA_DIR": str(work / name),
            **env,
        },
        log_path=work / f"{name}.log",
    )


def start_all(servers: list[Server]) -> list[Server]:
    for server in servers:
        server.spawn()
    for server in servers:
        server.wait_ready()
    return servers


@contextmanager
def running(servers: list[Server]) -> Iterator[list[Server]]:
    try:
        yield start_all(servers)
    finally:
        for server in servers:
            server.stop()


# Databases -----------------------------------------------------------------------------------


def postgres_base_url(given: str | None) -> str | None:
    """The PostgreSQL server to make scratch databases on, if one answers."""
    import psycopg

    candidates = [given, os.environ.get("AIDMESH_BENCH_PG"), os.environ.get("DATABASE_URL")]
    candidates.append("postgresql://postgres@127.0.0.1:5432/postgres")
    for url in candidates:
        if not url or not url.startswith(("postgres://", "postgresql")):
            continue
        url = url.replace("postgresql+psycopg://", "postgresql://")
        try:
            with psycopg.connect(url, connect_timeout=3) as conn:
                conn.execute("select 1")
            return url
        except psycopg.Error:
            continue
    return None


# The record ------------------------------------------------------------------------------------


def git_commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            out = subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return out.stdout.strip()

    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain"))}


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 0
    return {
        "cpu": model,
        "cores": cores,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


class Recorder:
    """Appends one JSON line per benchmark to `bench/results/<name>.jsonl`."""

    def __init__(self, run_id: str, argv: list[str], enabled: bool = True) -> None:
        self.run_id = run_id
        self.argv = argv
        self.enabled = enabled
        self.machine = machine()
        self.git = git_commit()

    def append(self, name: str, parameters: dict[str, Any], figures: Any) -> dict[str, Any]:
        record = {
            "benchmark": name,
            "run": self.run_id,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": self.machine,
            "git": self.git,
            "argv": self.argv,
            "parameters": parameters,
            "figures": figures,
        }
        if self.enabled:
            RESULTS.mkdir(parents=True, exist_ok=True)
            with open(RESULTS / f"{name}.jsonl", "a") as out:
                out.write(json.dumps(record, sort_keys=False, default=str) + "\n")
        return record


def table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            if value == 0:
                return "0"
            if abs(value) >= 100:
                return f"{value:,.0f}"
            if abs(value) >= 1:
                return f"{value:.1f}"
            return f"{value:.3f}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)
    ]
    lines = [f"\n{title}", "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines.append("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# Profiles ----------------------------------------------------------------------------------------


class Profiler:
    """py-spy on server processes for the length of one phase (`--profile DIR`).

    Writes `<name>.txt` (collapsed stacks, samples where the GIL was held) and a summary
    of the functions where that time goes. py-spy is on PyPI: `pip install py-spy`."""

    def __init__(self, out_dir: Path | None) -> None:
        self.out_dir = out_dir
        self.binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.running: list[tuple[subprocess.Popen[bytes], Path]] = []

    @property
    def enabled(self) -> bool:
        return self.out_dir is not None and Path(self.binary).exists()

    def start(self, name: str, pids: list[int]) -> None:
        if not self.enabled:
            return
        assert self.out_dir is not None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for i, pid in enumerate(pids):
            out = self.out_dir / f"{name}-{i}.txt"
            proc = start(
                [
                    self.binary,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    "250",
                    "--gil",
                    "--nonblocking",
                    "--format",
                    "raw",
                    "--output",
                    str(out),
                ],
                out.with_suffix(".log"),
            )
            self.running.append((proc, out))
        time.sleep(0.5)

    def stop(self) -> list[Path]:
        done = []
        for proc, out in self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            finally:
                end(proc)
            if out.exists():
                summarise_profile(out)
                done.append(out)
        self.running = []
        return done


def summarise_profile(path: Path, top: int = 40) -> str:
    """Inclusive and self share of each function in a collapsed-stack file."""
    from collections import Counter

    total = 0
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"{path.name}: {total} samples with the GIL held", "", "inclusive:"]
    lines += [f"{100 * v / total:5.1f}%  {k}" for k, v in inclusive.most_common(top)]
    lines += ["", "self:"]
    lines += [f"{100 * v / total:5.1f}%  {k}" for k, v in own.most_common(top)]
    text = "\n".join(lines)
    path.with_suffix(".summary.txt").write_text(text + "\n")
    return text
