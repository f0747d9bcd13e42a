"""Durations as playbooks write them: a whole number and one unit, such as ``90s``, ``30m``, ``2h``
or ``1d``.

One unit per value keeps the files easy to read aloud and easy to compare; there is no ``1h30m``
(write ``90m``).
"""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["DURATION_PATTERN", "MAX_DURATION", "format_duration", "parse_duration"]

#: The accepted spelling, for JSON schemas and error messages (positivity is checked separately).
DURATION_PATTERN = r"^[0-9]+[smhd]$"

#: The longest duration a playbook may state: nothing in a crisis waits longer than a month.
MAX_DURATION = timedelta(days=30)

_SECONDS_PER_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_UNITS_LARGEST_FIRST = ("d", "h", "m")
# The sign is accepted by the pattern only so that "-5m" is told it must be positive rather than
# that it is misspelt. ASCII digits only: str.isdigit and \d also accept other scripts' digits.
_SYNTAX = re.compile(r"(-?[0-9]+)([smhd])")
_EXAMPLES = "'90s', '30m', '2h' or '1d'"


def parse_duration(text: str) -> timedelta:
    """Parse ``<int><unit>`` (unit ``s``, ``m``, ``h`` or ``d``) into a positive timedelta of at
    most :data:`MAX_DURATION`.

    Raises :class:`ValueError` naming the offending text and what was expected. Surrounding
    whitespace is an error rather than silently stripped, so what is stored is what was written.
    """
    if not isinstance(text, str):
        raise ValueError(
            f"expected a duration string such as {_EXAMPLES}, got {type(text).__name__} {text!r}"
        )
    match = _SYNTAX.fullmatch(text)
    if match is None:
        raise ValueError(
            f"invalid duration {text!r}: expected a whole number followed by "
            f"s, m, h or d, such as {_EXAMPLES}"
        )
    amount, unit = int(match[1]), match[2]
    if amount <= 0:
        raise ValueError(f"invalid duration {text!r}: must be positive")
    # Compare in whole seconds before building the timedelta: a huge amount would overflow it.
    seconds = amount * _SECONDS_PER_UNIT[unit]
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(
            f"invalid duration {text!r}: must be at most {format_duration(MAX_DURATION)}"
        )
    return timedelta(seconds=seconds)


def format_duration(td: timedelta) -> str:
    """Render a timedelta in the largest unit that divides it exactly (``5400s`` is ``90m``).

    ``parse_duration(format_duration(td)) == td`` for every duration ``parse_duration`` accepts.
    Raises :class:`ValueError` for negative durations and for fractions of a second, which have
    no spelling in a playbook.
    """
    if td < timedelta(0):
        raise ValueError(f"cannot format a negative duration: {td!r}")
    if td.microseconds:
        raise ValueError(f"cannot format a fraction of a second: {td!r}")
    seconds = td.days * 86400 + td.seconds
    for unit in _UNITS_LARGEST_FIRST:
        amount, remainder = divmod(seconds, _SECONDS_PER_UNIT[unit])
        if amount and not remainder:
            return f"{amount}{unit}"
    return f"{seconds}s"
