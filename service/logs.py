"""Process logging: one handler on stderr, text or JSON lines, secrets scrubbed from both.

`configure_logging(settings)` is called once by `aidmesh serve` and `aidmesh demo`
(tests and embedding code keep whatever logging they set up). Libraries that
chatter at INFO (APScheduler runs a job every few seconds, httpx logs each
request) are held at WARNING unless the level asked for is DEBUG.

Redaction is the formatter's last step, so it covers the message, every extra
field and any traceback alike, in either format: a bearer token (`amk_…`), a
websocket ticket (`wst_…`), a session id (`ams_…`), a sign-up code (`ami_…`),
`token=`/`ticket=` query values, `Authorization`, `Cookie`, `Set-Cookie` and
`X-CSRF-Token` headers never reach the log, whoever wrote the line.
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from typing import IO, Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from service.settings import Settings

REDACTED = "[redacted]"

_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Anything shaped like an aidmesh token, websocket ticket, session id, sign-up
    # code or stored TOTP secret, or a sign-in provider's stored client secret, or a
    # provider sign-in's state, nonce or PKCE verifier, wherever it sits.
    (
        re.compile(r"\b(amk|wst|ams|ami|ats|acs|aos|aon|apv)_[A-Za-z0-9_\-]{8,}"),
        r"\1_" + REDACTED,
    ),
    # Cookies (a session id, a CSRF token) and the CSRF header: the whole value.
    (
        re.compile(
            r"(?i)(\\?[\"']?(?:set-)?cookie\\?[\"']?\s*[:=]\s*\\?[\"']?|x-csrf-token\\?[\"']?\s*[:=]"
            r"\s*\\?[\"']?|aidmesh_(?:session|csrf|oidc_state)=)[^\"'\\\r\n,}]+"
        ),
        r"\1" + REDACTED,
    ),
    # Query strings and form bodies: ?ticket=…, &token=…, access_token=…
    (
        re.compile(
            r"(?i)\b((?:access_|api_|refresh_)?(?:token|ticket|secret|password|key))="
            r"[^&\s\"'\\]+"
        ),
        r"\1=" + REDACTED,
    ),
    # Header forms: the whole value, whatever the scheme (Bearer, Basic, …).
    (
        re.compile(r"(?i)(\\?[\"']?authorization\\?[\"']?\s*[:=]\s*\\?[\"']?)[^\"'\\\r\n,;}]+"),
        r"\1" + REDACTED,
    ),
    # Mapping forms: 'token': '…', "ticket": "…"
    (
        re.compile(
            r"(?i)(\\?[\"']?(?:token|ticket|secret|password)\\?[\"']?\s*[:=]\s*\\?[\"']?)"
            r"[^\s\"'\\,;}]+"
        ),
        r"\1" + REDACTED,
    ),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=\-]+"), r"\1 " + REDACTED),
)


def redact(text: str) -> str:
    """`text` with every secret it holds replaced by `[redacted]`."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# The request (or websocket session) this task is serving: its id and, once the
# bearer token is checked, the caller's role and city. Set by the request log
# middleware; every log line written while serving it carries the id.
current_request: ContextVar[dict[str, Any] | None] = ContextVar("aidmesh_request", default=None)


def note_caller(role: str, city_id: int | None) -> None:
    """Record who the current request speaks for, for its log line."""
    info = current_request.get()
    if info is not None:
        info["role"] = role
        info["city_id"] = city_id


class _RequestId(logging.Filter):
    """Adds `request_id` to every record written while a request is being served."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            info = current_request.get()
            if info is not None:
                record.request_id = info["request_id"]
        return True


# Lines the server writes for every websocket: aidmesh writes one line per session
# instead (service/api/request_log.py), so at INFO these are left out.
_PER_CONNECTION_TEMPLATES = frozenset(
    {
        '%s - "WebSocket %s" [accepted]',
        '%s - "WebSocket %s" 403',
        '%s - "WebSocket %s" %d',
        "connection open",
        "connection closed",
    }
)


class _NoPerConnectionLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.levelno <= logging.INFO
            and record.name.startswith(("uvicorn", "websockets"))
            and record.msg in _PER_CONNECTION_TEMPLATES
        )


class TextFormatter(logging.Formatter):
    """`time level logger: message [request_id]`, secrets redacted."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        if request_id and getattr(record, "event", None) is None:
            line += f" [request {request_id}]"
        return redact(line)


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, message and the record's extras."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
            # uvicorn adds a copy of its message with terminal colours.
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],
        )

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


# Loggers held at WARNING unless DEBUG is asked for: each writes a line per job,
# per outgoing request or per connection.
_CHATTY = (
    "apscheduler",
    "httpx",
    "httpcore",
    "websockets",
    "asyncio",
    "alembic",
    "sqlalchemy",
    "psycopg",
    "multipart",
)


def configure_logging(
    settings: Settings, *, level: str | None = None, stream: IO[str] | None = None
) -> None:
    """Route every logger to one handler on `stream` (stderr) in the configured format."""
    name = (level or settings.log_level).upper()
    numeric = logging.getLevelName(name)
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {settings.log_level!r}: use debug, info or warning")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLineFormatter() if settings.log_format == "json" else TextFormatter())
    handler.addFilter(_RequestId())
    if numeric > logging.DEBUG:
        handler.addFilter(_NoPerConnectionLines())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for logger_name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logger = logging.getLogger(logger_name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    # uvicorn's access line carries the raw query string; aidmesh writes its own.
    logging.getLogger("uvicorn.access").disabled = True
    for chatty in _CHATTY:
        logging.getLogger(chatty).setLevel(numeric if numeric <= logging.DEBUG else logging.WARNING)
