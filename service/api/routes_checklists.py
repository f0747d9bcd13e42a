"""The incident's checklists, ticked off by its manager; each tick a `checklist.ticked` event."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import IdPath, ManagerActor, Parts
from service.commands import checklists
from service.models import ChecklistPublic, ChecklistTick

router = APIRouter(tags=["incidents"])


@router.post("/incidents/{incident_id}/checklist", response_model=list[ChecklistPublic])
async def tick_checklist(
    incident_id: IdPath, body: ChecklistTick, actor: ManagerActor, parts: Parts
) -> list[ChecklistPublic]:
    """Tick (`done: true`) or untick one item of the incident's checklists (copied from its
    playbook at declaration), for the requesting city's manager. Each change is one
    `checklist.ticked` event; a tick that changes nothing records nothing. Answers the
    checklists as they now are."""
    incident = await parts.executor.run(actor, checklists.tick_checklist, incident_id, body)
    return [ChecklistPublic.model_validate(c) for c in incident.checklists]
