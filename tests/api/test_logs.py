"""The log an operator reads: one JSON line per request and per websocket session, a
request id returned as a header, and no token, ticket or Authorization header in it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from service.logs import configure_logging, redact
from service.settings import Settings
from tests.support import World

API = "/api/v1"


class CapturedLog:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines() if line.strip()]

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("event") == kind]


def _capture(log_format: str) -> Iterator[CapturedLog]:
    """The process log as `aidmesh serve` configures it, into a buffer; restored after."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging(Settings(log_format=log_format, log_level="info"), stream=stream)
    try:
        yield CapturedLog(stream)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])


@pytest.fixture
def json_log() -> Iterator[CapturedLog]:
    yield from _capture("json")


@pytest.fixture
def text_log() -> Iterator[CapturedLog]:
    yield from _capture("text")


def test_each_request_writes_one_json_line_with_template_status_duration_and_caller(
    client: TestClient, world: World, json_log: CapturedLog
) -> None:
    manager = world.headers("manager", "nairobi")
    declared = client.post(
        f"{API}/incidents", headers=manager, json={"incident_type": "flood", "title": "F"}
    )
    assert declared.status_code == 201
    incident_id = declared.json()["id"]
    response = client.get(f"{API}/incidents/{incident_id}", headers=manager)
    assert response.status_code == 200

    lines = json_log.events("http.request")
    assert len(lines) == 2, lines
    line = lines[-1]
    assert line["method"] == "GET"
    assert line["path"] == f"{API}/incidents/{{incident_id}}"  # the template, not the id
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["role"] == "manager"
    assert line["city_id"] == world.city_ids["nairobi"]
    assert line["request_id"] == response.headers["x-request-id"]
    assert line["level"] == "INFO" and "time" in line
    assert lines[0]["path"] == f"{API}/incidents" and lines[0]["status"] == 201


def test_refused_and_unknown_routes_are_logged_without_their_raw_path(
    client: TestClient, json_log: CapturedLog
) -> None:
    assert client.get(f"{API}/incidents").status_code == 401
    assert client.get("/no/such/amk_page").status_code == 404
    first, second = json_log.events("http.request")
    assert (first["path"], first["status"], first["role"]) == (f"{API}/incidents", 401, None)
    assert (second["path"], second["status"]) == ("unmatched", 404)
    assert "amk_page" not in json_log.text()


def test_request_id_is_kept_when_sane_and_replaced_when_not(
    client: TestClient, json_log: CapturedLog
) -> None:
    kept = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a9c21:0001"})
    assert kept.headers["x-request-id"] == "lb-7f3a9c21:0001"
    forged = client.get("/healthz", headers={"X-Request-ID": 'x" injected=1'})
    assert forged.headers["x-request-id"] != 'x" injected=1'
    assert len(forged.headers["x-request-id"]) == 32
    fresh = client.get("/healthz")
    assert fresh.headers["x-request-id"] not in (
        kept.headers["x-request-id"],
        forged.headers["x-request-id"],
    )


def test_a_websocket_session_writes_one_line_when_it_ends(
    client: TestClient, world: World, json_log: CapturedLog
) -> None:
    token = world.token("responder", "thika")
    with client.websocket_connect("/ws", headers={"X-Request-ID": "ws-session-0001"}) as ws:
        ws.send_json({"op": "auth", "token": token})
        assert ws.receive_json()["type"] == "welcome"
    with (
        pytest.raises(WebSocketDisconnect),
        client.websocket_connect("/ws?ticket=wst_notaticketatall"),
    ):
        pass  # refused at the handshake

    accepted, refused = json_log.events("ws.session")
    assert accepted["path"] == "/ws" and accepted["status"] == 101
    assert accepted["role"] == "responder"
    assert accepted["city_id"] == world.city_ids["thika"]
    assert accepted["request_id"] == "ws-session-0001"
    assert accepted["duration_ms"] >= 0
    assert (refused["status"], refused["role"], refused["reason"]) == (403, None, "refused")
    assert token not in json_log.text()
    assert "wst_notaticketatall" not in json_log.text()


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_tokens_tickets_and_authorization_headers_never_reach_the_log(
    client: TestClient, world: World, log_format: str
) -> None:
    admin = world.token("admin")
    for captured in _capture(log_format):
        client.get(f"{API}/me?token={admin}")
        client.get(f"{API}/me", headers={"Authorization": f"Bearer {admin}"})
        ticket = client.post(
            f"{API}/ws-ticket", headers={"Authorization": f"Bearer {admin}"}
        ).json()["ticket"]
        with client.websocket_connect(f"/ws?ticket={ticket}") as ws:
            assert ws.receive_json()["type"] == "welcome"
        logger = logging.getLogger("service.anything")
        logger.warning("client sent %s", {"Authorization": f"Bearer {admin}", "ticket": ticket})
        logger.warning("GET /ws?ticket=%s&token=%s", ticket, admin)
        try:
            raise ValueError(f"bad token {admin}")
        except ValueError:
            logger.exception("failed")
        output = captured.text()
        assert "[redacted]" in output
        assert admin not in output and admin[4:] not in output
        assert ticket not in output and ticket[4:] not in output
        assert "Traceback" in output  # the exception was logged, scrubbed


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("GET /ws?ticket=wst_abcdefghijkl HTTP/1.1", "wst_abcdefghijkl"),
        ("GET /ws?ticket=plain-ticket-value", "plain-ticket-value"),
        ("url /x?a=1&token=s3cr3t-value&b=2", "s3cr3t-value"),
        ("headers: {'authorization': 'Bearer abc.def-123'}", "abc.def-123"),
        ('{"Authorization": "Basic dXNlcjpwYXNz"}', "dXNlcjpwYXNz"),
        ("Authorization: Bearer xyz987654321", "xyz987654321"),
        ('{"token": "amk_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"}', "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"),
        ("token amk_0123456789abcdef_-XYZ in prose", "0123456789abcdef_-XYZ"),
    ],
)
def test_redact_scrubs_each_shape_of_secret(line: str, secret: str) -> None:
    assert secret not in redact(line)
    assert "[redacted]" in redact(line)


def test_redact_leaves_ordinary_lines_alone() -> None:
    line = "GET /api/v1/incidents/{incident_id} 200 3.1 ms manager@city:1 request_id=abc"
    assert redact(line) == line
    assert redact("token prefix amk_1a2b3c listed") == "token prefix amk_1a2b3c listed"


def test_text_lines_carry_the_request_id_of_the_request_they_were_written_in(
    client: TestClient, text_log: CapturedLog
) -> None:
    client.get("/healthz", headers={"X-Request-ID": "trace-me-12345"})
    client.get(f"{API}/incidents")
    lines = text_log.text().splitlines()
    assert any("GET /api/v1/incidents 401" in line and "request_id=" in line for line in lines)
    # Probes are DEBUG: not in an INFO log.
    assert not any("/healthz" in line for line in lines)
