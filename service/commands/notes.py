"""Adding a note to the thread of a request or of a claim: one row and its `note.added`
event, in one transaction under the incident's lock (so the event's seq is in order).
A note added again with the same idempotency key returns the first note and adds
nothing; the same key with another note is refused."""

from __future__ import annotations

from sqlmodel import col, select

from service.commands.context import (
    CommandContext,
    body_fingerprint,
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
from service.domain.errors import IdempotencyMismatch, NotFound
from service.domain.events import EventType
from service.models import NoteCreate
from service.persistence.tables import AidRequest, Claim, Incident, Note

IDEMPOTENCY_MISMATCH = (
    "this Idempotency-Key was already used for a different note; use a new key for a new note"
)


def fingerprint(request_id: int, claim_id: int | None, body: NoteCreate) -> str:
    return body_fingerprint({"request_id": request_id, "claim_id": claim_id, "body": body.body})


def add_request_note(
    ctx: CommandContext, request_id: int, body: NoteCreate, idempotency_key: str | None = None
) -> tuple[Note, bool]:
    """A note on a request, by its requesting city or a city it reaches or that claimed it.
    Returns (note, created)."""
    incident, request = locked(ctx.session, AidRequest, request_id, "request")
    _visible(ctx, incident, f"request {request_id} not found")
    claimers = claim_cities(ctx.session, request_id)
    reached = claim_rules.reached_cities(target_rings(ctx.session, request_id), request.ring)
    writers = rules.request_note_writers(request.city_id, reached, claimers)
    rules.check_note_writer(ctx.actor.role, ctx.actor.city_id, writers, "request")
    return _add(ctx, incident, request, None, body, idempotency_key)


def add_claim_note(
    ctx: CommandContext, claim_id: int, body: NoteCreate, idempotency_key: str | None = None
) -> tuple[Note, bool]:
    """A note on a claim, by the requesting city or the claiming city. Returns (note,
    created)."""
    incident, claim = locked(ctx.session, Claim, claim_id, "claim")
    _visible(ctx, incident, f"claim {claim_id} not found")
    writers = rules.claim_note_writers(incident.city_id, claim.city_id)
    rules.check_note_writer(ctx.actor.role, ctx.actor.city_id, writers, "claim")
    request = ctx.session.get(AidRequest, claim.request_id)
    if request is None:  # a claim always has its request; the check keeps mypy honest
        raise NotFound(f"claim {claim_id} not found")
    return _add(ctx, incident, request, claim, body, idempotency_key)


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
    idempotency_key: str | None,
) -> tuple[Note, bool]:
    assert ctx.actor.city_id is not None  # check_note_writer let only a city's people in
    claim_id = claim.id if claim is not None else None
    print_ = fingerprint(request.id or 0, claim_id, body) if idempotency_key else None
    if idempotency_key is not None:
        # Under the incident's lock: a note with this key has committed or not started.
        earlier = ctx.session.exec(
            select(Note).where(
                col(Note.city_id) == ctx.actor.city_id,
                col(Note.idempotency_key) == idempotency_key,
            )
        ).one_or_none()
        if earlier is not None:
            if earlier.body_fingerprint != print_:
                raise IdempotencyMismatch(IDEMPOTENCY_MISMATCH)
            return earlier, False
    note = Note(
        incident_id=incident.id or 0,
        request_id=request.id or 0,
        claim_id=claim_id,
        city_id=ctx.actor.city_id,
        author_role=ctx.actor.event_role,
        author_token_id=ctx.actor.token_id,
        body=body.body,
        idempotency_key=idempotency_key,
        body_fingerprint=print_,
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
    return note, True
