"""The op protocol of `/ws`, apart from the socket: what a decoded frame asks for, or
the refusal that answers it.

Every message is a JSON object with an `op` and, optionally, a `ref` (a string or an
integer) echoed in its reply. The ops `auth`, `subscribe`, `unsubscribe` and `ping`
are the protocol's own; every other op is a command the service registers when it
wires the endpoint (an `Op`: its fields, how to read them, how to run it), so this
package names none. A field an op does not take is refused (422, naming the field),
by the rule the service injects (`UnknownFields`), the one its REST bodies follow.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from realtime.connection import Viewer
from realtime.index import Scope

NOT_AN_OBJECT = "each message is a JSON object with an 'op'"
AUTH_FIRST = "authenticate first: {op: auth, token}"


class Refusal(Exception):
    """An op that cannot be served as asked (bad input, a role that may not, a database
    that is unavailable, ...): the client gets an error frame with this status and
    detail, and the socket stays open. A refusal the service words carries its `code`
    and `params` too, for a client to word it in its own language."""

    def __init__(
        self,
        status: int,
        detail: Any,
        code: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code
        self.params = dict(params or {})

    def frame(self) -> dict[str, Any]:
        return error(self.status, self.detail, code=self.code, params=self.params)


def error(
    status: int,
    detail: Any,
    ref: Any = None,
    *,
    code: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "error", "status": status, "detail": detail}
    if code is not None:
        message["code"] = code
        message["params"] = dict(params or {})
    if ref is not None:
        message["ref"] = ref
    return message


class Op(Protocol):
    """A command the service serves over the websocket, registered under its name."""

    @property
    def fields(self) -> frozenset[str]:
        """The fields it takes besides `op` and `ref`; any other is refused."""
        ...

    def read(self, viewer: Viewer, fields: dict[str, Any]) -> Any:
        """Its parameters from its fields, or `Refusal` (a role that may not send it, a
        field of the wrong shape). Pure: no I/O."""
        ...

    async def run(self, viewer: Viewer, params: Any) -> dict[str, Any]:
        """Do it: the reply is an `ack` or an `error` message; `Refusal` when it cannot
        be done now."""
        ...


UnknownFields = Callable[[Mapping[str, Any], Collection[str]], "Refusal | None"]
"""The refusal (a 422 naming them, as the service words every validation issue) of the
fields of a message no op takes; None when there are none."""

# The protocol's own ops and their fields.
OWN_OPS: dict[str, frozenset[str]] = {
    "subscribe": frozenset({"scopes", "since"}),
    "unsubscribe": frozenset({"scopes"}),
    "ping": frozenset(),
}
_ENVELOPE = ("op", "ref")


@dataclass(frozen=True, slots=True)
class Request:
    """One op asked for: its name, its fields (without `op` and `ref`) and its `ref`."""

    op: str
    fields: dict[str, Any]
    ref: str | int | None = None


def read_ref(message: dict[str, Any]) -> str | int | None:
    """The `ref` to echo: a string or an integer, else none."""
    ref = message.get("ref")
    return ref if isinstance(ref, str | int) else None


def read_request(
    message: dict[str, Any], ops: Mapping[str, Op], unknown_fields: UnknownFields
) -> Request:
    """The op `message` asks for, or `Refusal`."""
    op = message.get("op")
    if op == "auth":
        raise Refusal(400, "already authenticated")
    known = OWN_OPS.get(op) if isinstance(op, str) else None
    if known is None:
        command = ops.get(op) if isinstance(op, str) else None
        if command is None:
            raise Refusal(400, unknown_op(ops))
        known = command.fields
    fields = {k: v for k, v in message.items() if k not in _ENVELOPE}
    refusal = unknown_fields(fields, known)
    if refusal is not None:
        raise refusal
    assert isinstance(op, str)
    return Request(op, fields, read_ref(message))


def unknown_op(ops: Mapping[str, Op]) -> str:
    names = ["subscribe", "unsubscribe", *ops, "ping"]
    return f"unknown op: use {', '.join(names[:-1])} or {names[-1]}"


def auth_token(message: Any) -> str | None:
    """The token of a first message `{"op": "auth", "token": ...}`, else None."""
    if not isinstance(message, dict) or message.get("op") != "auth":
        return None
    token = message.get("token")
    return token if isinstance(token, str) else None


# subscribe and unsubscribe -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscribe:
    scopes: list[Scope]
    since: dict[int, int] | None  # None: live events only


def read_subscribe(
    fields: dict[str, Any], *, held: int, max_scopes: int, max_id: int, max_since_keys: int
) -> Subscribe:
    """A subscribe's scopes and `since`, for a connection on `held` scopes already."""
    raw_scopes = fields.get("scopes")
    if not isinstance(raw_scopes, list) or not raw_scopes:
        raise Refusal(400, "'scopes' must be a non-empty list")
    if held + len(raw_scopes) > max_scopes:
        raise Refusal(429, f"at most {max_scopes} scopes per connection")
    since = read_since(fields.get("since"), max_id, max_since_keys)
    return Subscribe(read_scopes(raw_scopes, max_id), since)


def read_scopes(raw_scopes: Any, max_id: int) -> list[Scope]:
    if not isinstance(raw_scopes, list):
        raise Refusal(400, "'scopes' must be a list")
    try:
        return [Scope.parse(raw, max_id=max_id) for raw in raw_scopes]
    except ValueError as exc:
        raise Refusal(400, str(exc)) from None


_SINCE_KEY = re.compile(r"[1-9][0-9]{0,18}")


def read_since(value: Any, max_id: int, max_keys: int) -> dict[int, int] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Refusal(400, "'since' maps incident ids to the last seq seen, e.g. {\"12\": 40}")
    if len(value) > max_keys:
        raise Refusal(400, f"'since' names at most {max_keys} incidents; subscribe in parts")
    since: dict[int, int] = {}
    for key, seq in value.items():
        if not _SINCE_KEY.fullmatch(key) or int(key) > max_id:
            raise Refusal(400, f"'since' key {key[:24]!r} is not an incident id (1 to {max_id})")
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= max_id:
            raise Refusal(400, f"'since' values are seqs: integers from 0 to {max_id}")
        since[int(key)] = seq
    return since
