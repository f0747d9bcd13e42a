"""What a city's manager (or the network admin) does with webhook endpoints: register,
change, pause, resume, rotate the secret, ping, delete, read the delivery log, redeliver.

Each is one transaction. The URL's addresses are checked before these run (it takes a
lookup: see `service.webhooks.sender.Sender.check`); these check who may act.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, literal, update
from sqlmodel import col, select

from service.commands.context import CommandContext
from service.domain.actors import Role
from service.domain.errors import Conflict, Forbidden, Invalid, NotFound
from service.domain.webhooks import SECRET_BYTES, EndpointStatus, Outcome, new_secret
from service.models import Page
from service.persistence.tables import (
    City,
    Event,
    Incident,
    WebhookAttempt,
    WebhookCursor,
    WebhookEndpoint,
    WebhookQueued,
)
from service.webhooks.models import (
    AttemptPublic,
    WebhookCreate,
    WebhookIssued,
    WebhookPublic,
    WebhookUpdate,
)

MAX_ENDPOINTS_PER_CITY = 20
# Outcomes a redelivery of "every failed one" takes up.
_FAILED = (Outcome.FAILED.value, Outcome.GONE.value)


def _require_manager(ctx: CommandContext) -> None:
    if ctx.actor.role not in (Role.MANAGER, Role.ADMIN):
        raise Forbidden(
            f"webhooks are managed by a city's manager or the admin "
            f"(yours is a {ctx.actor.role.value} token)"
        )


def owned(ctx: CommandContext, endpoint_id: int) -> WebhookEndpoint:
    """The endpoint, if the caller manages its city (404 otherwise, as for any unseen row)."""
    _require_manager(ctx)
    endpoint = ctx.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or not (ctx.actor.is_admin or endpoint.city_id == ctx.actor.city_id):
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return endpoint


def public(endpoint: WebhookEndpoint) -> WebhookPublic:
    return WebhookPublic.model_validate(endpoint)


def target_city(ctx: CommandContext, body: WebhookCreate) -> int:
    """The city a new endpoint serves, if the caller may register it there."""
    _require_manager(ctx)
    if ctx.actor.is_admin:
        if body.city_id is None:
            raise Invalid("city_id: the admin names the city the endpoint serves")
        city_id = body.city_id
    else:
        assert ctx.actor.city_id is not None
        if body.city_id not in (None, ctx.actor.city_id):
            raise Forbidden("a manager registers endpoints for its own city only")
        city_id = ctx.actor.city_id
    if ctx.session.get(City, city_id) is None:
        raise NotFound(f"city {city_id} not found")
    return city_id


def register_endpoint(ctx: CommandContext, body: WebhookCreate) -> WebhookIssued:
    city_id = target_city(ctx, body)
    count = ctx.session.exec(
        select(func.count()).where(col(WebhookEndpoint.city_id) == city_id)
    ).one()
    if count >= MAX_ENDPOINTS_PER_CITY:
        raise Conflict(f"a city may have at most {MAX_ENDPOINTS_PER_CITY} webhook endpoints")
    secret = new_secret(secrets.token_bytes(SECRET_BYTES))
    endpoint = WebhookEndpoint(
        city_id=city_id,
        url=body.url,
        description=body.description,
        event_types=sorted({t.value for t in body.event_types}),
        secret=secret,
        created_by_token_id=ctx.actor.token_id,
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    ctx.session.add(endpoint)
    ctx.session.flush()
    # Deliveries start now: every incident's cursor at its newest seq. An incident that
    # commits its first event later has no cursor yet and is delivered from seq 1.
    ctx.session.execute(
        insert(WebhookCursor).from_select(
            ["endpoint_id", "incident_id", "seq", "failures"],
            select(literal(endpoint.id), Incident.id, Incident.last_seq, literal(0)),
        )
    )
    return WebhookIssued.model_validate({**public(endpoint).model_dump(), "secret": secret})


def list_endpoints(
    ctx: CommandContext, city_id: int | None, status: str | None, limit: int, offset: int
) -> Page[WebhookPublic]:
    _require_manager(ctx)
    query = select(WebhookEndpoint)
    if not ctx.actor.is_admin:
        query = query.where(col(WebhookEndpoint.city_id) == ctx.actor.city_id)
    if city_id is not None:
        query = query.where(col(WebhookEndpoint.city_id) == city_id)
    if status is not None:
        query = query.where(col(WebhookEndpoint.status) == status)
    total = ctx.session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = ctx.session.exec(
        query.order_by(col(WebhookEndpoint.id)).limit(limit).offset(offset)
    ).all()
    next_offset = offset + len(rows) if offset + len(rows) < total else None
    return Page[WebhookPublic].model_validate(
        {
            "data": [public(r) for r in rows],
            "count": total,
            "limit": limit,
            "offset": offset,
            "next_offset": next_offset,
        }
    )


def get_endpoint(ctx: CommandContext, endpoint_id: int) -> WebhookPublic:
    return public(owned(ctx, endpoint_id))


def update_endpoint(ctx: CommandContext, endpoint_id: int, body: WebhookUpdate) -> WebhookPublic:
    endpoint = owned(ctx, endpoint_id)
    if body.url is not None:
        endpoint.url = body.url
    if body.event_types is not None:
        endpoint.event_types = sorted({t.value for t in body.event_types})
    if body.description is not None:
        endpoint.description = body.description
    endpoint.updated_at = ctx.now
    ctx.session.add(endpoint)
    return public(endpoint)


def pause_endpoint(ctx: CommandContext, endpoint_id: int) -> WebhookPublic:
    endpoint = owned(ctx, endpoint_id)
    if endpoint.status == EndpointStatus.DISABLED:
        raise Conflict("webhook endpoint cannot go from 'disabled' to 'paused': resume it")
    _set_status(ctx, endpoint, EndpointStatus.PAUSED, "paused by a manager")
    return public(endpoint)


def resume_endpoint(ctx: CommandContext, endpoint_id: int) -> WebhookPublic:
    """Active again, from where delivery stopped: nothing recorded meanwhile is lost, and
    the retries waiting for their time are due at once."""
    endpoint = owned(ctx, endpoint_id)
    _set_status(ctx, endpoint, EndpointStatus.ACTIVE, "")
    ctx.session.execute(
        update(WebhookCursor)
        .where(col(WebhookCursor.endpoint_id) == endpoint_id)
        .values(failures=0, failing_since=None, next_attempt_at=None)
    )
    return public(endpoint)


def _set_status(
    ctx: CommandContext, endpoint: WebhookEndpoint, status: EndpointStatus, reason: str
) -> None:
    endpoint.status = status.value
    endpoint.status_reason = reason
    endpoint.updated_at = ctx.now
    ctx.session.add(endpoint)


def rotate_secret(ctx: CommandContext, endpoint_id: int, overlap: timedelta) -> WebhookIssued:
    """A new secret; the old one keeps signing beside it for `overlap`."""
    endpoint = owned(ctx, endpoint_id)
    secret = new_secret(secrets.token_bytes(SECRET_BYTES))
    if overlap > timedelta(0):
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_until = ctx.now + overlap
    else:
        endpoint.previous_secret = None
        endpoint.previous_secret_until = None
    endpoint.secret = secret
    endpoint.updated_at = ctx.now
    ctx.session.add(endpoint)
    return WebhookIssued.model_validate({**public(endpoint).model_dump(), "secret": secret})


def delete_endpoint(ctx: CommandContext, endpoint_id: int) -> None:
    owned(ctx, endpoint_id)
    for table in (WebhookAttempt, WebhookQueued, WebhookCursor):
        ctx.session.execute(delete(table).where(col(table.endpoint_id) == endpoint_id))
    ctx.session.execute(delete(WebhookEndpoint).where(col(WebhookEndpoint.id) == endpoint_id))


def ping_body(endpoint: WebhookEndpoint, event_id: str, now: datetime) -> dict[str, Any]:
    """A test event in the envelope of every other, outside any incident."""
    return {
        "type": "event",
        "event": {
            "event_id": event_id,
            "incident_id": None,
            "seq": None,
            "type": "webhook.ping",
            "occurred_at": now.isoformat(),
            "actor_role": "system",
            "actor_city_id": None,
            "actor_user_id": None,
            "actor_name": None,
            "data": {"endpoint_id": endpoint.id, "city_id": endpoint.city_id},
            "audience": {"cities": [endpoint.city_id], "viewers": []},
        },
    }


def queue_ping(ctx: CommandContext, endpoint_id: int) -> str:
    endpoint = owned(ctx, endpoint_id)
    event_id = str(uuid.uuid4())
    ctx.session.add(
        WebhookQueued(
            endpoint_id=endpoint_id,
            kind="ping",
            event_id=event_id,
            body=ping_body(endpoint, event_id, ctx.now),
            created_at=ctx.now,
            next_attempt_at=ctx.now,
        )
    )
    return event_id


def list_attempts(
    ctx: CommandContext,
    endpoint_id: int,
    outcome: str | None,
    event_id: str | None,
    limit: int,
    offset: int,
) -> Page[AttemptPublic]:
    owned(ctx, endpoint_id)
    query = select(WebhookAttempt).where(col(WebhookAttempt.endpoint_id) == endpoint_id)
    if outcome is not None:
        query = query.where(col(WebhookAttempt.outcome) == outcome)
    if event_id is not None:
        query = query.where(col(WebhookAttempt.event_id) == event_id)
    total = ctx.session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = ctx.session.exec(
        query.order_by(col(WebhookAttempt.id).desc()).limit(limit).offset(offset)
    ).all()
    next_offset = offset + len(rows) if offset + len(rows) < total else None
    return Page[AttemptPublic].model_validate(
        {
            "data": [AttemptPublic.model_validate(r) for r in rows],
            "count": total,
            "limit": limit,
            "offset": offset,
            "next_offset": next_offset,
        }
    )


def redeliver(ctx: CommandContext, endpoint_id: int, attempt_id: int) -> int:
    """Send the event of one logged attempt again (whatever its outcome was)."""
    owned(ctx, endpoint_id)
    attempt = ctx.session.get(WebhookAttempt, attempt_id)
    if attempt is None or attempt.endpoint_id != endpoint_id:
        raise NotFound(f"delivery attempt {attempt_id} not found for endpoint {endpoint_id}")
    return _queue_redeliveries(ctx, endpoint_id, [attempt.event_id])


def redeliver_failed(ctx: CommandContext, endpoint_id: int) -> int:
    """Send again every event whose delivery failed for good and never succeeded since."""
    owned(ctx, endpoint_id)
    delivered = select(WebhookAttempt.event_id).where(
        col(WebhookAttempt.endpoint_id) == endpoint_id,
        col(WebhookAttempt.outcome) == Outcome.DELIVERED.value,
    )
    failed = ctx.session.exec(
        select(WebhookAttempt.event_id)
        .where(
            col(WebhookAttempt.endpoint_id) == endpoint_id,
            col(WebhookAttempt.outcome).in_(_FAILED),
            col(WebhookAttempt.event_id).not_in(delivered),
        )
        .distinct()
    ).all()
    return _queue_redeliveries(ctx, endpoint_id, list(failed))


def _queue_redeliveries(ctx: CommandContext, endpoint_id: int, event_ids: list[str]) -> int:
    waiting = set(
        ctx.session.exec(
            select(WebhookQueued.event_id).where(col(WebhookQueued.endpoint_id) == endpoint_id)
        ).all()
    )
    known = set(
        ctx.session.exec(select(Event.event_id).where(col(Event.event_id).in_(event_ids))).all()
    )
    queued = 0
    for event_id in event_ids:
        if event_id in waiting or event_id not in known:
            continue  # already queued, or a ping (pings are not sent again)
        ctx.session.add(
            WebhookQueued(
                endpoint_id=endpoint_id,
                kind="redelivery",
                event_id=event_id,
                created_at=ctx.now,
                next_attempt_at=ctx.now,
            )
        )
        queued += 1
    return queued
