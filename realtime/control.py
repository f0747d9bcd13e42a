"""Control messages: what the bus carries beside events, for every replica's gateway to act on.

They travel on the events channel, so every replica that receives events receives
them, in the same order as the events around them. Each is a JSON object with a
`"type": "control"` and no `"event"` key. At most once, like events: whoever
relies on one also has a way to catch up (a revoked token is refused by the
database on every command, and a replica re-checks its connected tokens after a
lost bus connection).
"""

from __future__ import annotations

from typing import Any

import orjson

TOKEN_REVOKED = "token_revoked"  # noqa: S105 (a message name, not a secret)
SESSIONS_ENDED = "sessions_ended"
TOKEN_ROTATED = "token_rotated"  # noqa: S105 (a message name, not a secret)


def token_revoked(token_id: int) -> bytes:
    """The message that closes `token_id`'s sockets on every replica."""
    return orjson.dumps({"type": "control", "control": TOKEN_REVOKED, "token_id": token_id})


def revoked_token_id(message: dict[str, Any]) -> int | None:
    """The token id of a `token_revoked` message, else None."""
    if message.get("type") != "control" or message.get("control") != TOKEN_REVOKED:
        return None
    token_id = message.get("token_id")
    if not isinstance(token_id, int) or isinstance(token_id, bool):
        return None
    return token_id


def token_rotated(token_id: int) -> bytes:
    """The message that closes `token_id`'s sockets on every replica, which connect
    again with the token's new secret (the old one no longer authenticates)."""
    return orjson.dumps({"type": "control", "control": TOKEN_ROTATED, "token_id": token_id})


def rotated_token_id(message: dict[str, Any]) -> int | None:
    """The token id of a `token_rotated` message, else None."""
    if message.get("type") != "control" or message.get("control") != TOKEN_ROTATED:
        return None
    token_id = message.get("token_id")
    if not isinstance(token_id, int) or isinstance(token_id, bool):
        return None
    return token_id


def sessions_ended(session_ids: list[int]) -> bytes:
    """The message that closes the sockets of these sessions (signed out) everywhere."""
    return orjson.dumps(
        {"type": "control", "control": SESSIONS_ENDED, "session_ids": sorted(session_ids)}
    )


def ended_session_ids(message: dict[str, Any]) -> list[int] | None:
    """The session ids of a `sessions_ended` message, else None."""
    if message.get("type") != "control" or message.get("control") != SESSIONS_ENDED:
        return None
    ids = message.get("session_ids")
    if not isinstance(ids, list):
        return None
    return [i for i in ids if isinstance(i, int) and not isinstance(i, bool)]
