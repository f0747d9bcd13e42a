"""Hands the first admin token to the operator without putting it in the process log.

Log collectors keep everything a server prints. The token goes to a file only the
operator's user can read, and to the terminal only when there is one.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TextIO

FILE_NAME = "admin-token"


def hand_over(secret: str, data_dir: Path, out: TextIO | None = None) -> Path:
    """Write `secret` to `data_dir/admin-token` (mode 0600) and tell the operator where."""
    out = out or sys.stdout
    data_dir.mkdir(parents=True, exist_ok=True)
    path = (data_dir / FILE_NAME).resolve()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a file left by an earlier database: never widen its permissions
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as sink:
        sink.write(secret + "\n")
    lines = [
        "",
        "First start: an admin token was issued.",
        f"It is in {path} (readable by this user only): store it elsewhere, then delete the file.",
    ]
    if out.isatty():
        lines += ["", f"  {secret}"]
    print("\n".join([*lines, ""]), file=out, flush=True)
    return path
