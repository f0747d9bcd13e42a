"""Scopes, and the index of which connections are on which: the gateway asks it who
gets an event (by incident, by the cities of its audience, on the board) or a city's
notice, in a few set lookups however many connections there are."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

_SCOPE = re.compile(r"^(?:(incident|city):([1-9][0-9]{0,18})|(board))$")


@dataclass(frozen=True, slots=True)
class Scope:
    kind: str  # "incident" | "city" | "board"
    id: int | None = None

    @classmethod
    def parse(cls, text: object, *, max_id: int) -> Scope:
        """The scope `text` names; `ValueError` with a message for the client if none,
        or if its id is beyond `max_id`."""
        if not isinstance(text, str):
            raise ValueError("a scope is a string like 'incident:12', 'city:3' or 'board'")
        match = _SCOPE.match(text)
        if match is None:
            raise ValueError(
                f"unknown scope {text[:40]!r}: use 'incident:<id>', 'city:<id>' or 'board'"
            )
        if match.group(3):
            return cls("board")
        scope_id = int(match.group(2))
        if scope_id > max_id:
            kind = match.group(1)
            raise ValueError(f"{kind} id {scope_id} is out of range: ids are 1 to {max_id}")
        return cls(match.group(1), scope_id)

    def __str__(self) -> str:
        return self.kind if self.id is None else f"{self.kind}:{self.id}"


class Holder(Protocol):
    """What the index needs of a connection: its scopes and, for the board, its viewer."""

    scopes: set[Scope]

    @property
    def viewer(self) -> Any: ...


C = TypeVar("C", bound=Holder)


class ScopeIndex(Generic[C]):
    """Connections by incident, by city, and on the board (all of it for an admin or a
    viewer without a city, else the part its city sees)."""

    def __init__(self) -> None:
        self._by_incident: dict[int, set[C]] = {}
        self._by_city: dict[int, set[C]] = {}
        self._board_all: set[C] = set()
        self._board_by_city: dict[int, set[C]] = {}

    def add(self, conn: C, scope: Scope) -> None:
        conn.scopes.add(scope)
        self._members(conn, scope).add(conn)

    def discard(self, conn: C, scope: Scope) -> None:
        conn.scopes.discard(scope)
        self._members(conn, scope).discard(conn)

    def _members(self, conn: C, scope: Scope) -> set[C]:
        if scope.kind == "incident":
            assert scope.id is not None
            return self._by_incident.setdefault(scope.id, set())
        if scope.kind == "city":
            assert scope.id is not None
            return self._by_city.setdefault(scope.id, set())
        viewer = conn.viewer
        if viewer.is_admin or viewer.city_id is None:
            return self._board_all
        return self._board_by_city.setdefault(viewer.city_id, set())

    def for_event(self, incident_id: int, audience: dict[str, Any]) -> set[C]:
        """Who gets an event of the incident: its subscribers, the inboxes of the cities
        it is addressed to, and the board of everyone who may see it."""
        targets = set(self._by_incident.get(incident_id, ()))
        for city_id in audience.get("cities", ()):
            targets |= self._by_city.get(city_id, set())
        targets |= self._board_all
        for city_id in audience.get("viewers", ()):
            targets |= self._board_by_city.get(city_id, set())
        return targets

    def for_notice(self, city_id: int) -> set[C]:
        """Who gets a city's notice: that city's inbox and board, and the whole board."""
        targets = self._by_city.get(city_id, set()) | self._board_by_city.get(city_id, set())
        return targets | self._board_all
