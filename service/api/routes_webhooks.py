"""Webhook endpoints of a city's own systems: managed by the city's manager or the admin."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from service.api.deps import CurrentActor, IdPath, IdQuery, Limit, Offset, Parts
from service.commands import webhooks
from service.domain.errors import Invalid
from service.models import Page
from service.webhooks.models import (
    AttemptPublic,
    Queued,
    SecretRotation,
    WebhookCreate,
    WebhookIssued,
    WebhookPublic,
    WebhookUpdate,
)

router = APIRouter(tags=["webhooks"])
StatusFilter = Literal["active", "paused", "disabled"]
OutcomeFilter = Literal["delivered", "retrying", "failed", "gone"]
EventIdQuery = Annotated[str | None, Query(min_length=1, max_length=36, pattern=r"^[0-9a-f-]+$")]


async def _checked(parts: Parts, url: str) -> None:
    """Refuse a URL whose host resolves anywhere but a public address (422 says why)."""
    if parts.webhooks is None:
        raise Invalid("webhooks are not available on this replica")
    await parts.webhooks.sender.check(url)


@router.post("/webhooks", response_model=WebhookIssued, status_code=status.HTTP_201_CREATED)
async def register_webhook(body: WebhookCreate, actor: CurrentActor, parts: Parts) -> WebhookIssued:
    """Register an endpoint. The answer holds the signing secret: it is shown only here."""
    await parts.executor.read(actor, webhooks.target_city, body)  # who may, before any lookup
    await _checked(parts, body.url)
    return await parts.executor.run(actor, webhooks.register_endpoint, body)


@router.get("/webhooks", response_model=Page[WebhookPublic])
async def list_webhooks(
    actor: CurrentActor,
    parts: Parts,
    city_id: IdQuery = None,
    status: StatusFilter | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[WebhookPublic]:
    return await parts.executor.read(actor, webhooks.list_endpoints, city_id, status, limit, offset)


@router.get("/webhooks/{endpoint_id}", response_model=WebhookPublic)
async def get_webhook(endpoint_id: IdPath, actor: CurrentActor, parts: Parts) -> WebhookPublic:
    return await parts.executor.read(actor, webhooks.get_endpoint, endpoint_id)


@router.patch("/webhooks/{endpoint_id}", response_model=WebhookPublic)
async def update_webhook(
    endpoint_id: IdPath, body: WebhookUpdate, actor: CurrentActor, parts: Parts
) -> WebhookPublic:
    await parts.executor.read(actor, webhooks.get_endpoint, endpoint_id)
    if body.url is not None:
        await _checked(parts, body.url)
    return await parts.executor.run(actor, webhooks.update_endpoint, endpoint_id, body)


@router.delete("/webhooks/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(endpoint_id: IdPath, actor: CurrentActor, parts: Parts) -> None:
    await parts.executor.run(actor, webhooks.delete_endpoint, endpoint_id)


@router.post("/webhooks/{endpoint_id}/pause", response_model=WebhookPublic)
async def pause_webhook(endpoint_id: IdPath, actor: CurrentActor, parts: Parts) -> WebhookPublic:
    """Stop sending; events keep accumulating and go out, in order, on resume."""
    return await parts.executor.run(actor, webhooks.pause_endpoint, endpoint_id)


@router.post("/webhooks/{endpoint_id}/resume", response_model=WebhookPublic)
async def resume_webhook(endpoint_id: IdPath, actor: CurrentActor, parts: Parts) -> WebhookPublic:
    """Send again (also after the endpoint was disabled), from where delivery stopped."""
    resumed = await parts.executor.run(actor, webhooks.resume_endpoint, endpoint_id)
    _wake(parts)
    return resumed


@router.post("/webhooks/{endpoint_id}/rotate-secret", response_model=WebhookIssued)
async def rotate_webhook_secret(
    endpoint_id: IdPath,
    actor: CurrentActor,
    parts: Parts,
    body: SecretRotation | None = None,
) -> WebhookIssued:
    """A new signing secret, shown once; the old one also signs during the overlap
    (default `AIDMESH_WEBHOOK_ROTATION_OVERLAP_S`, 24 h)."""
    seconds = body.overlap_s if body and body.overlap_s is not None else None
    if seconds is None:
        seconds = int(parts.settings.webhook_rotation_overlap_s)
    return await parts.executor.run(
        actor, webhooks.rotate_secret, endpoint_id, timedelta(seconds=seconds)
    )


@router.post("/webhooks/{endpoint_id}/ping", status_code=status.HTTP_202_ACCEPTED)
async def ping_webhook(endpoint_id: IdPath, actor: CurrentActor, parts: Parts) -> dict[str, str]:
    """Queue a `webhook.ping` test event; its attempts appear in the delivery log."""
    event_id = await parts.executor.run(actor, webhooks.queue_ping, endpoint_id)
    _wake(parts)
    return {"event_id": event_id}


@router.get("/webhooks/{endpoint_id}/attempts", response_model=Page[AttemptPublic])
async def list_webhook_attempts(
    endpoint_id: IdPath,
    actor: CurrentActor,
    parts: Parts,
    outcome: OutcomeFilter | None = None,
    event_id: EventIdQuery = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[AttemptPublic]:
    """The delivery log, newest first: each attempt's time, status, latency, response
    excerpt and next retry."""
    return await parts.executor.read(
        actor, webhooks.list_attempts, endpoint_id, outcome, event_id, limit, offset
    )


@router.post(
    "/webhooks/{endpoint_id}/attempts/{attempt_id}/redeliver",
    response_model=Queued,
    status_code=status.HTTP_202_ACCEPTED,
)
async def redeliver_one(
    endpoint_id: IdPath, attempt_id: IdPath, actor: CurrentActor, parts: Parts
) -> Queued:
    """Send that attempt's event again."""
    queued = await parts.executor.run(actor, webhooks.redeliver, endpoint_id, attempt_id)
    _wake(parts)
    return Queued(queued=queued)


@router.post(
    "/webhooks/{endpoint_id}/redeliver-failed",
    response_model=Queued,
    status_code=status.HTTP_202_ACCEPTED,
)
async def redeliver_failed(endpoint_id: IdPath, actor: CurrentActor, parts: Parts) -> Queued:
    """Send again every event whose delivery failed for good."""
    queued = await parts.executor.run(actor, webhooks.redeliver_failed, endpoint_id)
    _wake(parts)
    return Queued(queued=queued)


def _wake(parts: Parts) -> None:
    if parts.webhooks is not None and parts.webhooks.worker is not None:
        parts.webhooks.worker.wake()
