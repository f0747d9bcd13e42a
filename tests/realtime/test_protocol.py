"""The op protocol parsed apart from the socket: what a decoded message asks for, or the
refusal that answers it, with the service's ops registered and its field rule injected."""

from __future__ import annotations

from typing import Any

import pytest

from realtime.connection import Viewer
from realtime.index import Scope
from realtime.protocol import (
    Refusal,
    Request,
    auth_token,
    read_ref,
    read_request,
    read_subscribe,
    unknown_op,
)
from service.live import refuse_unknown_fields as unknown_fields


class Echo:
    """A command op of the kind a service registers."""

    fields = frozenset({"text"})

    def read(self, viewer: Viewer, fields: dict[str, Any]) -> Any:
        return fields

    async def run(self, viewer: Viewer, params: Any) -> dict[str, Any]:
        return {"type": "ack", "status": 200, "result": params}


OPS = {"echo": Echo()}


def _refusal(message: dict[str, Any]) -> tuple[int, Any]:
    with pytest.raises(Refusal) as refused:
        read_request(message, OPS, unknown_fields)
    return refused.value.status, refused.value.detail


def test_a_registered_op_is_read_with_its_fields_and_ref() -> None:
    request = read_request({"op": "echo", "text": "hi", "ref": 4}, OPS, unknown_fields)
    assert request == Request("echo", {"text": "hi"}, 4)


def test_the_protocols_own_ops_need_no_registration() -> None:
    assert read_request({"op": "ping"}, {}, unknown_fields) == Request("ping", {})
    assert read_request({"op": "unsubscribe", "scopes": []}, {}, unknown_fields).op == (
        "unsubscribe"
    )


def test_an_unknown_op_names_the_ops_there_are() -> None:
    listed = "unknown op: use subscribe, unsubscribe, echo or ping"
    assert _refusal({"op": "dance"}) == (400, listed)
    assert _refusal({"op": ["echo"]})[0] == 400
    assert _refusal({"text": "no op"})[0] == 400
    assert unknown_op({}) == "unknown op: use subscribe, unsubscribe or ping"


def test_auth_after_authentication_is_refused() -> None:
    assert _refusal({"op": "auth", "token": "t"}) == (400, "already authenticated")


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"op": "echo", "text": "hi", "loud": True}, "loud"),
        ({"op": "ping", "payload": 1}, "payload"),
        ({"op": "subscribe", "scopes": ["board"], "sinse": {}}, "sinse"),
    ],
)
def test_a_field_the_op_does_not_take_is_a_422_naming_it(
    message: dict[str, Any], field: str
) -> None:
    assert _refusal(message) == (
        422,
        [{"loc": [field], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}],
    )


@pytest.mark.parametrize(
    ("ref", "echoed"), [("r", "r"), (7, 7), (None, None), ([1], None), ({"a": 1}, None)]
)
def test_only_a_string_or_integer_ref_is_echoed(ref: object, echoed: object) -> None:
    assert read_ref({"op": "ping", "ref": ref}) == echoed


@pytest.mark.parametrize(
    ("message", "token"),
    [
        ({"op": "auth", "token": "amk_x"}, "amk_x"),
        ({"op": "auth", "token": 5}, None),
        ({"op": "ping"}, None),
        (["auth"], None),
    ],
)
def test_a_first_message_authenticates_only_as_an_auth_op(message: Any, token: str | None) -> None:
    assert auth_token(message) == token


def test_a_subscribe_reads_its_scopes_and_since() -> None:
    asked = read_subscribe(
        {"scopes": ["incident:12", "board"], "since": {"12": 40}},
        held=0,
        max_scopes=100,
        max_id=1000,
        max_since_keys=10,
    )
    assert asked.scopes == [Scope("incident", 12), Scope("board")]
    assert asked.since == {12: 40}


@pytest.mark.parametrize(
    ("fields", "held", "status", "words"),
    [
        ({"scopes": []}, 0, 400, "non-empty list"),
        ({"scopes": ["board", "city:1"]}, 99, 429, "at most 100 scopes"),
        ({"scopes": ["incident:1001"]}, 0, 400, "out of range"),
        ({"scopes": ["board"], "since": {"0": 1}}, 0, 400, "not an incident id"),
        ({"scopes": ["board"], "since": {"1": -1}}, 0, 400, "integers from 0"),
        ({"scopes": ["board"], "since": {str(i): 0 for i in range(1, 12)}}, 0, 400, "at most 10"),
    ],
)
def test_a_bad_subscribe_is_refused_with_the_reason(
    fields: dict[str, Any], held: int, status: int, words: str
) -> None:
    with pytest.raises(Refusal) as refused:
        read_subscribe(fields, held=held, max_scopes=100, max_id=1000, max_since_keys=10)
    assert refused.value.status == status
    assert words in refused.value.detail
