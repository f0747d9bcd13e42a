"""Declaring from a playbook, trimmed or adjusted: which of the playbook's requests are
raised, with what quantity and priority. Pure: the declaration and its dry run both ask."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from service.domain.errors import Invalid


@dataclass(frozen=True, slots=True)
class Choice:
    """Raise the playbook's request at `index` (0 is the first), with `quantity` units and,
    when given, `priority` instead of the playbook's."""

    index: int
    quantity: int
    priority: str | None = None


@dataclass(frozen=True, slots=True)
class Chosen:
    """One request to raise: the playbook's request at `index`, as adjusted."""

    index: int
    quantity: int
    priority: str


def choose(written: Sequence[tuple[int, str]], choices: Sequence[Choice] | None) -> list[Chosen]:
    """The requests to raise from a playbook whose requests are `written` as (quantity,
    priority), in the playbook's order. Without `choices`, all of them as written; with
    them, only those chosen (none for an empty list), each once (`Invalid` otherwise)."""
    if choices is None:
        return [Chosen(i, quantity, priority) for i, (quantity, priority) in enumerate(written)]
    seen: set[int] = set()
    for choice in choices:
        if choice.index >= len(written):
            raise Invalid(
                f"playbook_requests: the playbook has {len(written)} requests "
                f"(index 0 to {len(written) - 1}); there is no index {choice.index}"
            )
        if choice.index in seen:
            raise Invalid(f"playbook_requests: index {choice.index} is chosen twice")
        seen.add(choice.index)
    return [
        Chosen(c.index, c.quantity, c.priority or written[c.index][1])
        for c in sorted(choices, key=lambda c: c.index)
    ]
