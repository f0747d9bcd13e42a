"""How a JSON document from outside is read, for REST bodies and websocket frames alike.

Both transports take input through `decode`, so a body one refuses the other refuses
too. It is strict where the JSON grammar is lenient: UTF-8 only (no byte order mark,
no UTF-16), no duplicate keys (`{"quantity": 1, "quantity": 7}` would otherwise claim
7), no `NaN` or `Infinity`, numbers of sane length, and a bounded nesting depth.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32
"""Deepest nesting of arrays and objects a client may send; aidmesh's own documents
nest four levels at most."""

MAX_NUMBER_DIGITS = 100
"""Longest number literal accepted; ids and quantities fit in 19 digits."""

_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


class WireError(ValueError):
    """A document that cannot be read as aidmesh's JSON; `detail` says why, for the client."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise WireError(f"duplicate key {key[:40]!r}: each key may appear once")
        document[key] = value
    return document


def _no_constant(name: str) -> Any:
    raise WireError(f"{name} is not a JSON number")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise WireError(f"a number has more than {MAX_NUMBER_DIGITS} digits")
    return int(text)


def _bounded_float(text: str) -> float:
    if len(text) > MAX_NUMBER_DIGITS:
        raise WireError(f"a number has more than {MAX_NUMBER_DIGITS} characters")
    return float(text)


_DECODER = json.JSONDecoder(
    object_pairs_hook=_no_duplicates,
    parse_constant=_no_constant,
    parse_int=_bounded_int,
    parse_float=_bounded_float,
)


def as_text(raw: bytes) -> str:
    """The text of a UTF-8 document; a BOM, UTF-16 or invalid bytes are refused."""
    if raw.startswith(_BOMS):
        raise WireError("send JSON as UTF-8 without a byte order mark")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError(f"not UTF-8: invalid byte at offset {exc.start}") from None


def decode(raw: str | bytes) -> Any:
    """The document in `raw`, or `WireError` saying what is wrong with it."""
    text = as_text(raw) if isinstance(raw, bytes) else raw
    if text.startswith("\ufeff"):
        raise WireError("send JSON as UTF-8 without a byte order mark")
    if _opens_deeper_than(text, MAX_DEPTH):
        raise WireError(f"nested deeper than {MAX_DEPTH} levels")
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise WireError(f"not valid JSON: {exc.msg} at {where}") from None
    except RecursionError:
        raise WireError(f"nested deeper than {MAX_DEPTH} levels") from None


def _opens_deeper_than(text: str, limit: int) -> bool:
    """True if brackets outside strings nest deeper than `limit` (checked before parsing,
    so a 300,000-deep document never reaches the recursive parser)."""
    if text.count("[") + text.count("{") <= limit:
        return False  # the common case: a small document cannot be that deep
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False
