"""Latency histograms that merge across processes: log buckets 1% wide from 0.1 ms to ~100 s."""

from __future__ import annotations

import math
from typing import Any

_BASE = 1e-4  # seconds
_RATIO = math.log(1.01)
BUCKETS = 1400


def bucket(seconds: float) -> int:
    if seconds <= _BASE:
        return 0
    return min(BUCKETS - 1, int(math.log(seconds / _BASE) / _RATIO) + 1)


def upper_edge(index: int) -> float:
    return float(_BASE * math.exp(index * _RATIO))


def middle(index: int) -> float:
    """A representative value of a bucket (its geometric middle)."""
    return 0.0 if index == 0 else float(_BASE * math.exp((index - 0.5) * _RATIO))


class Histogram:
    __slots__ = ("counts", "max", "n")

    def __init__(self) -> None:
        self.counts = [0] * BUCKETS
        self.n = 0
        self.max = 0.0

    def add(self, seconds: float, count: int = 1) -> None:
        self.counts[bucket(seconds)] += count
        self.n += count
        if seconds > self.max:
            self.max = seconds

    def merge(self, other: Histogram | dict[str, Any]) -> None:
        counts = other.counts if isinstance(other, Histogram) else other["counts"]
        n = other.n if isinstance(other, Histogram) else other["n"]
        top = other.max if isinstance(other, Histogram) else other["max"]
        if isinstance(counts, dict):
            for i, c in counts.items():
                self.counts[int(i)] += c
        else:
            for i, c in enumerate(counts):
                self.counts[i] += c
        self.n += n
        self.max = max(self.max, top)

    def quantile(self, q: float) -> float | None:
        if self.n == 0:
            return None
        rank = q * self.n
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank and c:
                return min(upper_edge(i), self.max)
        return self.max

    def compact(self) -> dict[str, Any]:
        """A small form to send between processes."""
        return {
            "counts": {i: c for i, c in enumerate(self.counts) if c},
            "n": self.n,
            "max": self.max,
        }

    def summary_ms(self) -> dict[str, float | None]:
        def ms(v: float | None) -> float | None:
            return None if v is None else round(v * 1000, 2)

        return {
            "p50_ms": ms(self.quantile(0.50)),
            "p90_ms": ms(self.quantile(0.90)),
            "p99_ms": ms(self.quantile(0.99)),
            "max_ms": ms(self.max if self.n else None),
            "samples": self.n,
        }


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)
