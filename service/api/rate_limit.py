"""Per-token rate limits on the REST API: a token bucket per bearer token, per replica.

A runaway script must not crowd out every other city's responders. Each bearer
token (or, without one, each client address) gets `rate` requests per second with
`burst` in hand; past that the API answers 429 with `Retry-After` and serves
nothing. Buckets live in the replica's memory, so with N replicas behind a
balancer a token may get up to N times the rate. Only `/api/` paths are limited:
pages, health checks and metrics are not, and websockets have their own limit.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from service import edge

_AUTHORIZATION = b"authorization"


class _Bucket:
    __slots__ = ("at", "tokens")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at


class RateLimit:
    """Pure ASGI middleware; `rate` <= 0 turns it off."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        rate: float,
        burst: int,
        prefix: str = "/api/",
        max_keys: int = 100_000,
    ) -> None:
        self.app = app
        self.rate = rate
        self.burst = float(max(1, burst))
        self.prefix = prefix
        self.max_keys = max_keys
        self._buckets: OrderedDict[bytes, _Bucket] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.rate <= 0 or scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        key = _key(scope)
        wait_s = self._take(key)
        if wait_s is None:
            await self.app(scope, receive, send)
            return
        who = "this token" if key.startswith(b"t") else "this address (no token)"
        body = orjson.dumps(
            {
                "detail": f"too many requests for {who}: at most {self.rate:g} per second",
                "code": edge.RATE_LIMITED,
                "params": {"rate": self.rate},
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(max(1, math.ceil(wait_s))).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _take(self, key: bytes) -> float | None:
        """None when the request may go on, else the seconds until one token is back."""
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)  # the least recently seen key
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return (1 - bucket.tokens) / self.rate


def _key(scope: Scope) -> bytes:
    for name, value in scope.get("headers", ()):
        if name == _AUTHORIZATION:
            # Hashed: the buckets never hold a usable token.
            return b"t" + hashlib.blake2b(value, digest_size=16).digest()
    client = scope.get("client")
    return b"a" + (client[0].encode() if client else b"?")
