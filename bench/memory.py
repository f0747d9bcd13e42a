"""Memory: resident set size per idle websocket connection of one server process.

A fresh server, a few warm-up connections, then VmRSS (/proc/<pid>/status) before
and after opening idle connections (authenticated and subscribed, for aidmesh).
"""

from __future__ import annotations

import time
from typing import Any

from bench.fanout import AidmeshTarget, Context, NaiveTarget
from bench.harness import log

WARM = 20


def measure(target: AidmeshTarget | NaiveTarget, counts: list[int]) -> dict[str, Any]:
    target.grow(WARM)
    time.sleep(2)
    pid = target.servers[0].pid
    base = target.servers[0].rss()
    out: dict[str, Any] = {"base_rss_mb": round(base / 2**20, 1), "points": []}
    for n in counts:
        connect = target.grow(n)
        time.sleep(3)
        rss = target.servers[0].rss()
        opened = target.clients - WARM
        point = {
            "connections": target.clients,
            "rss_mb": round(rss / 2**20, 1),
            "kb_per_connection": round((rss - base) / max(1, opened) / 1024, 2),
            "connect_s": connect.get("seconds"),
            "connect_failed": connect.get("failed"),
        }
        out["points"].append(point)
        log(f"memory pid {pid}: {point}")
    return out


def run(ctx: Context, counts: list[int]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with AidmeshTarget(ctx, 1, "memory") as aidmesh:
        results["aidmesh"] = measure(aidmesh, counts)
    with NaiveTarget(ctx) as naive:
        results["naive"] = measure(naive, counts)
    return results
