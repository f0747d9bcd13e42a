"""Adding a note to the thread of a request or of a claim: one row and its `note.added`
event, in one transaction under the incident's lock (so the event's seq is in order)."""

from __future__ import annotations

from service.commands.context import (
    CommandContext,
    claim_cities,
    current_audience,
    locked,
    target_rings,
    visible_incident,
)
from service.commands.presenters import as_json, note_public
from service.domain import claims as claim_rules
from service.domain import lifecycles as lc
from service.domain import notes as rules
from service.domain.errors import NotFound
from service.domain.events import EventType
from service.models import NoteCreate
from service.persistence.tables import AidRequest, Claim, Incident, Note


def add_request_note(ctx: CommandContext, request_id: int, body: NoteCreate) -> Note:
    """A note on a request, by its requesting city or a city it reaches or that claimed it."""
    incident, request = locked(ctx.session, AidRequest, request_id, "request")
    _visible(ctx, incident, f"request {request_id} not found")
    claimers = claim_cities(ctx.session, request_id)
    reached = claim_rules.reached_cities(target_rings(ctx.session, request_id), request.ring)
    writers = rules.request_note_writers(request.city_id, reached, claimers)
    rules.check_note_writer(ctx.actor.role, ctx.actor.city_id, writers, "request")
    return _add(ctx, incident, request, None, body)


def add_claim_note(ctx: CommandContext, claim_id: int, body: NoteCreate) -> Note:
    """A note on a claim, by the requesting city or the claiming city."""
    incident, claim = locked(ctx.session, Claim, claim_id, "claim")
    _visible(ctx, incident, f"claim {claim_id} not found")
    writers = rules.claim_note_writers(incident.city_id, claim.city_id)
    rules.check_note_writer(ctx.actor.role, ctx.actor.city_id, writers, "claim")
    request = ctx.session.get(AidRequest, claim.request_id)
    if request is None:  # a claim always has its request; the check keeps mypy honest
        raise NotFound(f"claim {claim_id} not found")
    return _add(ctx, incident, request, claim, body)


def _visible(ctx: CommandContext, incident: Incident, missing: str) -> None:
    visible_incident(ctx.session, ctx.actor, incident.id or 0, missing)
    lc.ensure_incident_active(
        lc.IncidentStatus(incident.status), "note", "a closed incident takes no new notes"
    )


def _add(
    ctx: CommandContext,
    incident: Incident,
    request: AidRequest,
    claim: Claim | None,
    body: NoteCreate,
) -> Note:
    assert ctx.actor.city_id is not None  # check_note_writer let only a city's people in
    note = Note(
        incident_id=incident.id or 0,
        request_id=request.id or 0,
        claim_id=claim.id if claim is not None else None,
        city_id=ctx.actor.city_id,
        author_role=ctx.actor.event_role,
        author_token_id=ctx.actor.token_id,
        body=body.body,
        created_at=ctx.now,
    )
    ctx.session.add(note)
    ctx.session.flush()
    audience = sorted(
        set(current_audience(ctx.session, request)) | claim_cities(ctx.session, request.id or 0)
    )
    ctx.emit(
        incident,
        EventType.NOTE_ADDED,
        {"note": as_json(note_public(note)), "request_id": request.id},
        cities=audience,
    )
    return note
