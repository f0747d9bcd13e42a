"""The model family of webhook endpoints and their delivery log, as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints
from pydantic import Strict as StrictMarker

from service.domain.events import EventType
from service.models import Id, Input, Output, ShortText, _Clean

WebhookUrl = Annotated[
    str, StrictMarker(), StringConstraints(min_length=8, max_length=2000), _Clean
]
EventTypes = Annotated[list[EventType], Field(max_length=len(EventType))]
OverlapSeconds = Annotated[int, StrictMarker(), Field(ge=0, le=7 * 24 * 3600)]


class WebhookCreate(Input):
    url: WebhookUrl = Field(description="https URL of the receiving system.")
    event_types: EventTypes = Field(
        default_factory=list, description="The event types to send; empty for every type."
    )
    description: ShortText = ""
    city_id: Id | None = Field(
        default=None, description="The city the endpoint serves (admins only; a manager's own)."
    )


class WebhookUpdate(Input):
    url: WebhookUrl | None = None
    event_types: EventTypes | None = None
    description: ShortText | None = None


class SecretRotation(Input):
    overlap_s: OverlapSeconds | None = Field(
        default=None,
        description="How long the old secret keeps signing beside the new one (seconds).",
    )


class WebhookPublic(Output):
    id: int
    city_id: int
    url: str
    description: str
    event_types: list[str]
    status: str = Field(description="`active`, `paused` or `disabled`.")
    status_reason: str
    created_at: datetime
    updated_at: datetime
    last_success_at: datetime | None
    last_failure_at: datetime | None
    previous_secret_until: datetime | None = Field(
        description="While a rotation overlaps: until when the old secret also signs."
    )


class WebhookIssued(WebhookPublic):
    secret: str = Field(description="The signing secret (`whsec_…`). Shown once.")


class AttemptPublic(Output):
    id: int
    endpoint_id: int
    event_id: str
    event_type: str
    incident_id: int | None
    seq: int | None
    source: str = Field(description="`stream`, `ping` or `redelivery`.")
    attempt: int
    attempted_at: datetime
    status_code: int | None
    latency_ms: float
    outcome: str = Field(description="`delivered`, `retrying`, `failed` or `gone`.")
    error: str
    response_excerpt: str
    next_retry_at: datetime | None


class Queued(Output):
    queued: int
