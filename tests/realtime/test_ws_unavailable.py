"""When the service behind the websocket cannot answer, the client gets an error frame
(503 for an unavailable database, 500 for a bug) and keeps its socket: never a drop.

The endpoint is driven with a fake of its own `Authority` interface; the service's
mapping of database failures is checked against a real database that cannot open.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from realtime.gateway import Gateway, Viewer
from realtime.gateway import Scope as Topic
from realtime.ws_endpoint import Limits, Refusal, WebsocketEndpoint
from service.live import _in_thread
from service.live import refuse_unknown_fields as unknown_fields
from service.wire import decode

VIEWER = Viewer(role="responder", city_id=2, token_id=7)


class FailingAuthority:
    """Authenticates anyone; cannot replay (503) and breaks on authorize of a city (a bug)."""

    async def authenticate(self, token: str | None, ticket: str | None) -> Viewer | None:
        return VIEWER

    async def authorize(self, viewer: Viewer, scope: Topic) -> tuple[int, str] | None:
        if scope.kind == "city":
            raise KeyError("a bug")
        return None

    async def replay(
        self, viewer: Viewer, scopes: set[Topic], since: dict[int, int]
    ) -> list[dict[str, Any]]:
        raise Refusal(503, "the database is unavailable; retry shortly")

    async def last_seqs(self) -> dict[int, int]:
        return {}

    async def events_after(self, incident_id: int, after: int) -> list[dict[str, Any]]:
        return []

    async def revoked_among(self, token_ids: set[int]) -> set[int]:
        return set()


class FailingClaim:
    """A command op whose database is unavailable."""

    fields = frozenset({"request_id", "quantity", "idempotency_key"})

    def read(self, viewer: Viewer, fields: dict[str, Any]) -> dict[str, Any]:
        return fields

    async def run(self, viewer: Viewer, params: Any) -> dict[str, Any]:
        raise Refusal(503, "the database is unavailable; retry shortly")


def test_failures_behind_the_socket_are_error_frames_and_the_socket_stays() -> None:
    authority = FailingAuthority()
    endpoint = WebsocketEndpoint(
        Gateway(authority),
        authority,
        Limits(),
        decode=decode,
        unknown_fields=unknown_fields,
        ops={"claim": FailingClaim()},
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await endpoint.asgi(scope, receive, send)

    with TestClient(app).websocket_connect("/ws") as ws:
        ws.send_text('{"op": "auth", "token": "t"}')
        assert ws.receive_json()["type"] == "welcome"
        answers = []
        for op in (
            {"op": "subscribe", "scopes": ["board"], "since": {"1": 0}, "ref": 1},
            {"op": "subscribe", "scopes": ["city:2"], "ref": 2},
            {"op": "claim", "request_id": 1, "quantity": 1, "idempotency_key": "k", "ref": 3},
            {"op": "ping", "ref": 4},
        ):
            ws.send_text(json.dumps(op))
            answers.append(ws.receive_json())
        ws.send_text('{"op": "unsubscribe", "scopes": []}')
        left = ws.receive_json()
    assert [(a["type"], a.get("status"), a["ref"]) for a in answers] == [
        ("error", 503, 1),
        ("error", 500, 2),
        ("error", 503, 3),
        ("pong", None, 4),
    ]
    # The subscribe whose replay failed left no subscription behind.
    assert left == {"type": "unsubscribed", "scopes": []}


def test_a_database_that_cannot_answer_is_a_503_refusal(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'missing' / 'no.db'}")

    def read() -> None:
        with engine.connect() as conn:
            conn.execute(text("select 1"))

    with pytest.raises(Refusal) as refused:
        asyncio.run(_in_thread(read))
    assert refused.value.status == 503
    assert "retry" in refused.value.detail
