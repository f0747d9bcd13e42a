"""The one wire form of an event: serialised once, the same bytes for the bus and every socket."""

from __future__ import annotations

from typing import Any

import orjson


def encode(event: dict[str, Any]) -> bytes:
    """`{"type": "event", "event": {...}}` as compact JSON bytes."""
    return orjson.dumps({"type": "event", "event": event})


def decode(message: bytes) -> dict[str, Any]:
    data = orjson.loads(message)
    if not isinstance(data, dict) or not isinstance(data.get("event"), dict):
        raise ValueError("not an event envelope")
    event: dict[str, Any] = data["event"]
    return event
