"""What a token may do beyond its role: its scopes, and when it stops working.

A token without scopes may do everything its role may. A scoped token may read what
its role may read, and write only through the routes of its scopes:

- `read`: nothing (read only);
- `claims`: claim a request, pass on one, change a claim's status (REST and websocket);
- `webhooks`: manage its city's webhook endpoints.

Opening the live feed (`POST /ws-ticket`) is reading: every scope may.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from service.domain.errors import Forbidden, Invalid, ScopeRefused

READ = "read"
CLAIMS = "claims"
WEBHOOKS = "webhooks"
SCOPES = (READ, CLAIMS, WEBHOOKS)

# The writes each scope allows, as (method, route template under /api/v1).
CLAIM_WRITES = frozenset(
    {
        ("POST", "/requests/{request_id}/claims"),
        ("POST", "/requests/{request_id}/passes"),
        ("POST", "/claims/{claim_id}/status"),
    }
)
READ_WRITES = frozenset({("POST", "/ws-ticket")})
WEBHOOK_PREFIX = "/webhooks"

# Last use is written at most this often per token.
LAST_USED_EVERY = timedelta(seconds=60)


def parse_scopes(stored: str) -> frozenset[str] | None:
    """A stored scope list as a set; None for an unscoped token."""
    names = frozenset(s for s in stored.split(",") if s)
    return names or None


def stored_scopes(scopes: Sequence[str] | None) -> str:
    """The stored form of requested scopes (checked: known names only)."""
    names = sorted(set(scopes or []))
    unknown = [s for s in names if s not in SCOPES]
    if unknown:
        raise Invalid(f"unknown scope(s): {', '.join(unknown)} (known: {', '.join(SCOPES)})")
    if READ in names and len(names) > 1:
        raise Invalid("'read' is read only: it cannot be combined with other scopes")
    return ",".join(names)


def may_write(scopes: frozenset[str] | None, method: str, template: str) -> bool:
    """Whether a token with `scopes` may call the write route `method template`."""
    if scopes is None or (method, template) in READ_WRITES:
        return True
    if (method, template) in CLAIM_WRITES:
        return CLAIMS in scopes
    if template == WEBHOOK_PREFIX or template.startswith(WEBHOOK_PREFIX + "/"):
        return WEBHOOKS in scopes
    return False


def may_send_commands(scopes: frozenset[str] | None) -> bool:
    """Whether a token with `scopes` may send the websocket's commands (all are claim ops)."""
    return scopes is None or CLAIMS in scopes


def scope_refused(scopes: frozenset[str]) -> Forbidden:
    return ScopeRefused(
        f"this token's scopes ({', '.join(sorted(scopes))}) do not allow this: "
        "issue a token with the scope it needs",
        scopes,
    )


def expiry(now: datetime, days: int | None, default_days: int, max_days: int) -> datetime:
    """When a token issued now expires: `days` from now (the default if None), at most
    `max_days`."""
    days = default_days if days is None else days
    if days < 1:
        raise Invalid("a token lives at least 1 day")
    if days > max_days:
        raise Invalid(f"a token lives at most {max_days} days (asked: {days})")
    return now + timedelta(days=days)


def expired(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and expires_at <= now
