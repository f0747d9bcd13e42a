"""Durations as playbooks write them: ``<int><s|m|h|d>``, positive, at most 30 days."""

from __future__ import annotations

from datetime import timedelta

import pytest

from playbooks import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("720h", timedelta(days=30)),
        ("30d", timedelta(days=30)),
        ("05m", timedelta(minutes=5)),
    ],
)
def test_valid_durations_parse_to_timedeltas(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0m", "must be positive"),
        ("-5m", "must be positive"),
        ("31d", "must be at most 30d"),
        ("43201m", "must be at most 30d"),
        ("99999999999999999999999d", "must be at most 30d"),
        ("5x", "expected a whole number followed by s, m, h or d"),
        ("", "expected a whole number"),
        ("10", "expected a whole number"),
        (" 5m", "expected a whole number"),
        ("5m ", "expected a whole number"),
        ("5 m", "expected a whole number"),
        ("5M", "expected a whole number"),
        ("1h30m", "expected a whole number"),
        ("1.5h", "expected a whole number"),
        ("+5m", "expected a whole number"),
        ("\u0665m", "expected a whole number"),  # an Arabic-Indic five: digits are ASCII only
    ],
)
def test_invalid_durations_are_rejected_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as caught:
        parse_duration(text)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize("value", [90, 1.5, None, timedelta(minutes=5)])
def test_non_strings_are_rejected(value: object) -> None:
    with pytest.raises(ValueError, match="expected a duration string"):
        parse_duration(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "td",
    [
        timedelta(seconds=1),
        timedelta(seconds=90),
        timedelta(minutes=30),
        timedelta(minutes=90),
        timedelta(hours=2),
        timedelta(hours=36),
        timedelta(days=1),
        timedelta(days=30),
        timedelta(days=1, seconds=1),
    ],
)
def test_formatted_durations_parse_back_to_the_same_timedelta(td: timedelta) -> None:
    assert parse_duration(format_duration(td)) == td


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("90s", "90s"), ("120s", "2m"), ("90m", "90m"), ("120m", "2h"), ("48h", "2d"), ("1d", "1d")],
)
def test_format_uses_the_largest_unit_that_divides_exactly(text: str, canonical: str) -> None:
    assert format_duration(parse_duration(text)) == canonical


def test_format_rejects_what_a_playbook_cannot_spell() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(timedelta(minutes=-5))
    with pytest.raises(ValueError, match="fraction of a second"):
        format_duration(timedelta(seconds=1.5))
