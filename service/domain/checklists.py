"""The playbook's checklists on an incident: copied when it is declared (a later edit of the
playbook does not change an incident under way), and ticked off item by item. Pure: the
checklists are plain lists and dicts, as the incident row stores them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from service.domain.errors import Invalid

Checklists = list[dict[str, Any]]


def checklists_from(playbook_checklists: Sequence[tuple[str, Sequence[str]]]) -> Checklists:
    """An incident's checklists, nothing ticked, from the playbook's (title, items)."""
    return [
        {
            "title": title,
            "items": [
                {"text": text, "done": False, "done_at": None, "done_by_city_id": None}
                for text in items
            ],
        }
        for title, items in playbook_checklists
    ]


def tick(
    checklists: Checklists, checklist: int, item: int, done: bool, *, now: datetime, city_id: int
) -> Checklists | None:
    """The checklists with one item ticked (`done`) or unticked, or None when it already
    was so. An index the incident does not have is `Invalid`."""
    if checklist >= len(checklists):
        raise Invalid(
            f"the incident has {len(checklists)} checklists; there is no checklist {checklist}"
        )
    items = checklists[checklist]["items"]
    if item >= len(items):
        raise Invalid(f"checklist {checklist} has {len(items)} items; there is no item {item}")
    if items[item]["done"] is done:
        return None
    ticked = {
        "text": items[item]["text"],
        "done": done,
        "done_at": now.isoformat() if done else None,
        "done_by_city_id": city_id if done else None,
    }
    changed = [dict(c, items=list(c["items"])) for c in checklists]
    changed[checklist]["items"][item] = ticked
    return changed
