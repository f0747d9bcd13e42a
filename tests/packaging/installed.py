"""aidmesh as a user gets it: the wheel built from what the Dockerfile copies, installed
into a virtual environment of its own, run as an unprivileged user.

`Install` builds the wheel from a staging folder holding exactly the Dockerfile's
COPY sources, installs it with the lock file into a fresh venv outside the source
tree, and runs its programs as `nobody` (when the tests run as root) with a minimal
environment, from a home folder outside the checkout, so nothing of the checkout
can be imported. `InstalledServer` is one `aidmesh serve` of that install, started
and stopped by its PID with the machinery of tests/replicas.py.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.procs import HOST, end, free_port, start, tail, wait_until_healthy
from tests.replicas import REPLICA_ENV
from tests.support import missing

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
UNPRIVILEGED_USER = "nobody"
# What an interpreter says about itself; the same answer as root and as the
# unprivileged user means that user runs the very same Python (a binary under a
# folder the user may not enter can come up with another libpython).
_PROBE = "import json, sys; print(json.dumps([sys.version, sys.base_prefix]))"


def dockerfile_sources(text: str) -> list[str]:
    """The build-context paths a Dockerfile's COPY and ADD instructions take, in order.

    `--from=` copies come from another stage, not the context, and are left out."""
    sources: list[str] = []
    for instruction in _instructions(text):
        words = instruction.split(None, 1)
        if len(words) < 2 or words[0].upper() not in ("COPY", "ADD"):
            continue
        args = words[1].strip()
        if args.startswith("["):
            parts: list[str] = json.loads(args)
        else:
            parts = shlex.split(args)
        flags = [p for p in parts if p.startswith("--")]
        if any(flag.startswith("--from=") for flag in flags):
            continue
        paths = [p for p in parts if not p.startswith("--")]
        for source in paths[:-1]:
            if source not in sources:
                sources.append(source)
    return sources


def _instructions(text: str) -> list[str]:
    """Instructions with their continuation lines joined, comments and blanks dropped."""
    joined: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    if pending:
        joined.append(pending)
    return joined


def stage_build_context(dest: Path, root: Path = ROOT, dockerfile: Path = DOCKERFILE) -> list[str]:
    """Copy exactly what the Dockerfile copies from `root` into `dest`, at the same paths."""
    sources = dockerfile_sources(dockerfile.read_text())
    for source in sources:
        matches = sorted(glob.glob(source, root_dir=root)) or [source]
        for relative in matches:
            origin, target = root / relative, dest / relative
            if not origin.exists():
                raise FileNotFoundError(f"the Dockerfile copies {relative}, which is not there")
            target.parent.mkdir(parents=True, exist_ok=True)
            if origin.is_dir():
                shutil.copytree(origin, target)
            else:
                shutil.copy2(origin, target)
    return sources


def run(cmd: list[str], *, timeout_s: float = 300, **kwargs: object) -> str:
    """Run a command to completion; its output is the failure message when it fails."""
    result = subprocess.run(  # type: ignore[call-overload]
        cmd, capture_output=True, text=True, timeout=timeout_s, check=False, **kwargs
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{shlex.join(cmd)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    out: str = result.stdout
    return out


class Unprivileged:
    """Runs programs as `nobody` when we are root (as in CI), else as ourselves."""

    def __init__(self) -> None:
        self.is_root = os.geteuid() == 0
        if self.is_root:
            account = pwd.getpwnam(UNPRIVILEGED_USER)
            self.uid, self.gid = account.pw_uid, account.pw_gid
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                missing("setpriv (util-linux) is needed to run the installed server unprivileged")
            assert setpriv is not None
            self.prefix = [
                setpriv,
                f"--reuid={self.uid}",
                f"--regid={self.gid}",
                "--clear-groups",
            ]
        else:
            self.uid, self.gid = os.geteuid(), os.getegid()
            self.prefix = []

    def own(self, path: Path) -> None:
        """Give a folder to the user the programs run as."""
        if self.is_root:
            os.chown(path, self.uid, self.gid)

    def command(self, cmd: list[str]) -> list[str]:
        return [*self.prefix, *cmd]


def base_python(user: Unprivileged) -> str:
    """A Python of this minor version that the unprivileged user runs exactly as we do.

    The interpreter behind the test run may live under a folder that user cannot
    enter (a per-user Python build under /root, say); then a system one is used."""
    minor = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [
        os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
        f"/usr/local/bin/{minor}",
        f"/usr/bin/{minor}",
    ]
    for candidate in candidates:
        if not os.access(candidate, os.X_OK):
            continue
        ours = subprocess.run(
            [candidate, "-c", _PROBE], capture_output=True, text=True, timeout=30, check=False
        )
        theirs = subprocess.run(
            user.command([candidate, "-c", _PROBE]),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            cwd="/",
        )
        if ours.returncode == 0 and theirs.returncode == 0 and ours.stdout == theirs.stdout:
            return candidate
    missing(f"no {minor} that user {UNPRIVILEGED_USER} can run (tried {', '.join(candidates)})")
    raise AssertionError("unreachable")


@dataclass
class Install:
    """A wheel built from the Dockerfile's sources, installed into a venv of its own."""

    base: Path
    user: Unprivileged
    python: str
    wheel: Path
    venv: Path
    home: Path
    timings_s: dict[str, float]

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def env(self, **extra: str) -> dict[str, str]:
        """A minimal environment: nothing of ours leaks in (no PYTHONPATH, no .venv on PATH)."""
        return {
            "PATH": f"{self.bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONNOUSERSITE": "1",
            **extra,
        }

    def run(self, program: str, *args: str, **env: str) -> str:
        """One of the installed programs, as the unprivileged user, from its home folder."""
        return run(
            self.user.command([str(self.bin / program), *args]),
            cwd=self.home,
            env=self.env(**env),
            timeout_s=120,
        )


def build_and_install(base: Path) -> Install:
    """Stage the Dockerfile's sources, build the wheel, install it with the lock file."""
    user = Unprivileged()
    python = base_python(user)
    timings: dict[str, float] = {}
    # Everything the unprivileged user needs sits under `base`: readable by all,
    # writable only in its home.
    base.chmod(0o755)
    context, wheels, venv, home = (base / n for n in ("context", "wheels", "venv", "home"))
    context.mkdir()
    home.mkdir(mode=0o700)
    user.own(home)

    began = time.monotonic()
    sources = stage_build_context(context)
    assert "constraints.txt" in sources, f"the Dockerfile copies no lock file: {sources}"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    run([*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(context)])
    built = sorted(wheels.glob("aidmesh-*.whl"))
    assert len(built) == 1, f"expected one aidmesh wheel, got {built}"
    timings["build"] = time.monotonic() - began

    began = time.monotonic()
    run([python, "-m", "venv", "--without-pip", str(venv)])
    run(
        [
            *pip,
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--quiet",
            "-c",
            str(context / "constraints.txt"),
            str(built[0]),
        ]
    )
    # Readable by the unprivileged user whatever umask the tests run under.
    run(["chmod", "-R", "a+rX", str(venv)])
    timings["install"] = time.monotonic() - began
    return Install(base, user, python, built[0], venv, home, timings)


@contextmanager
def installed() -> Iterator[Install]:
    """A fresh install in a folder of its own under the system temp dir (pytest's own
    is private to root), removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="aidmesh-wheel-"))
    try:
        yield build_and_install(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


class InstalledServer:
    """The installed `aidmesh serve`, as the unprivileged user, on a free loopback port."""

    def __init__(self, install: Install, *, database_url: str, redis_url: str) -> None:
        self.install = install
        self.port = free_port()
        self.settings = dict(
            REPLICA_ENV,
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            # Other tests share this Redis: a channel of our own keeps their events apart.
            AIDMESH_BUS_CHANNEL=f"aidmesh-wheel-{uuid.uuid4().hex[:12]}",
            AIDMESH_DATA_DIR=str(install.home / "var"),
            AIDMESH_LOG_LEVEL="info",
        )
        self.log_path = install.base / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/ws"

    def start(self, timeout_s: float = 60.0) -> float:
        """Start it and wait for /healthz; returns the seconds that took."""
        began = time.monotonic()
        cmd = self.install.user.command(
            [str(self.install.bin / "aidmesh"), "serve", "--port", str(self.port)]
        )
        self.proc = start(
            cmd, self.log_path, env=self.install.env(**self.settings), cwd=self.install.home
        )
        wait_until_healthy(
            self.proc, self.url, self.log_path, timeout_s=timeout_s, name="aidmesh serve"
        )
        return time.monotonic() - began

    def uid(self) -> int:
        """The real user id the server process runs as."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])
        raise AssertionError("no Uid line")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0, trust_env=False)

    def cli(self, *args: str) -> str:
        """The installed `aidmesh` command against this server's database."""
        return self.install.run("aidmesh", *args, **self.settings)

    def log(self, lines: int = 60) -> str:
        return tail(self.log_path, lines)

    def stop(self) -> None:
        end(self.proc)
