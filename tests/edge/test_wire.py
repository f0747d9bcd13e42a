"""The one JSON reader both transports use: strict where the grammar is lenient."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.wire import MAX_DEPTH, WireError, decode

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_every_ordinary_document_reads_back_as_itself(value: object) -> None:
    assert decode(json.dumps(value)) == value
    assert decode(json.dumps(value).encode()) == value


@pytest.mark.parametrize(
    "raw",
    [
        '{"quantity": 1, "quantity": 7}',
        '{"a": {"b": 1, "b": 1}}',
        '[{"x": 1, "y": 2, "x": 3}]',
    ],
)
def test_a_duplicate_key_is_refused_at_any_depth(raw: str) -> None:
    with pytest.raises(WireError, match="duplicate key"):
        decode(raw)


@given(st.text(min_size=1, max_size=10), json_values, json_values)
def test_any_duplicated_key_is_refused(key: str, first: object, second: object) -> None:
    raw = "{" + json.dumps(key) + ":" + json.dumps(first) + "," + json.dumps(key) + ":"
    raw += json.dumps(second) + "}"
    with pytest.raises(WireError, match="duplicate key"):
        decode(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'\xef\xbb\xbf{"quantity": 1}',
        '{"quantity": 1}'.encode("utf-16"),
        '{"quantity": 1}'.encode("utf-16-le"),
        '{"quantity": 1}'.encode("utf-32"),
        b'{"note": "\xff"}',
        "\ufeff{}",
    ],
)
def test_anything_but_utf8_without_a_bom_is_refused(raw: str | bytes) -> None:
    with pytest.raises(WireError):
        decode(raw)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 300_000])
@pytest.mark.parametrize(("opening", "closing"), [("[", "]"), ('{"a":', "}")])
def test_nesting_beyond_the_cap_is_refused_before_parsing(
    depth: int, opening: str, closing: str
) -> None:
    raw = opening * depth + "1" + closing * depth
    with pytest.raises(WireError, match="nested deeper"):
        decode(raw)


def test_nesting_at_the_cap_is_read() -> None:
    assert decode("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = "[" * 100 + '\\"'
    assert decode(json.dumps({"note": text})) == {"note": text}


@pytest.mark.parametrize(
    "raw", ["NaN", "[Infinity]", '{"q": -Infinity}', "1" * 5000, "0." + "1" * 500]
)
def test_non_numbers_and_huge_numbers_are_refused(raw: str) -> None:
    with pytest.raises(WireError):
        decode(raw)


@pytest.mark.parametrize("raw", ["", "{", '{"a" 1}', "[1,]", "{'a': 1}"])
def test_malformed_json_says_where(raw: str) -> None:
    with pytest.raises(WireError, match="not valid JSON"):
        decode(raw)
