"""Notes: the human thread of a request or a claim. Who may write one, in one place.

A request's thread is open to the requesting city, the cities the request reaches now
and the cities that claimed it; a claim's to the requesting city and the claiming city.
Managers and responders of those cities write; observers and the admin read only.
"""

from __future__ import annotations

from collections.abc import Iterable

from service.domain.actors import Role
from service.domain.errors import Forbidden, NotInvolved

WRITING_ROLES = frozenset({Role.MANAGER, Role.RESPONDER})


def request_note_writers(
    requesting_city_id: int, reached_city_ids: Iterable[int], claiming_city_ids: Iterable[int]
) -> frozenset[int]:
    """The cities that may write on a request's thread."""
    return frozenset({requesting_city_id, *reached_city_ids, *claiming_city_ids})


def claim_note_writers(requesting_city_id: int, claiming_city_id: int) -> frozenset[int]:
    """The cities that may write on a claim's thread."""
    return frozenset({requesting_city_id, claiming_city_id})


def may_write_note(role: Role, city_id: int | None, writers: frozenset[int]) -> bool:
    return role in WRITING_ROLES and city_id is not None and city_id in writers


def check_note_writer(role: Role, city_id: int | None, writers: frozenset[int], what: str) -> None:
    """Refuse (`Forbidden`) a caller who may not write on `what`'s thread."""
    if role not in WRITING_ROLES:
        raise Forbidden("observers and admins read notes; managers and responders write them")
    if not may_write_note(role, city_id, writers):
        raise NotInvolved(what)
