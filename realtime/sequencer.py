"""Per-incident order, as decisions without I/O: given an incident, a seq and an item,
what to dispatch now, when to read the store, when to wait.

Every incident's events are dispatched strictly in seq order, each once. A seq that
skips ahead is held, and the incident waits a short grace for the seqs before it (two
commits a moment apart can reach the bus the other way round); if they have not come
by then, the incident is filled from the store, and what arrives meanwhile is held
behind the fill. A periodic check against the store's newest seqs catches events
whose publish never happened at all.

The gateway does what the decisions say (dispatches, starts the grace timer, reads
the store) and reports back (`grace_over`, `filled`, `fill_ended`); this class holds
no timer, task or socket, so every path through it is tested with plain values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Step(Generic[T]):
    """What to do now: `dispatch` these (seq, item) in order; start the grace timer
    (`wait`); read the incident's events after its last dispatched seq (`fill`)."""

    dispatch: Sequence[tuple[int, T]] = ()
    wait: bool = False
    fill: bool = False


@dataclass(slots=True)
class _Incident(Generic[T]):
    seen: int = 0  # the last seq dispatched
    held: list[tuple[int, T]] = field(default_factory=list)
    filling: bool = False  # a store read is under way: arrivals are held behind it
    waiting: bool = False  # a grace timer is running
    behind_since_check: bool = False


class Sequencer(Generic[T]):
    def __init__(self, last_seqs: Mapping[int, int] | None = None) -> None:
        """`last_seqs`: each incident's newest seq at start; older ones are not sent."""
        self._incidents: dict[int, _Incident[T]] = {
            incident_id: _Incident(seen=seq) for incident_id, seq in (last_seqs or {}).items()
        }

    def seen(self, incident_id: int) -> int:
        """The last seq of the incident dispatched (0 if none)."""
        state = self._incidents.get(incident_id)
        return 0 if state is None else state.seen

    def held(self, incident_id: int) -> list[int]:
        """The seqs held back for the incident, in the order they came."""
        state = self._incidents.get(incident_id)
        return [] if state is None else [seq for seq, _ in state.held]

    def accept(self, incident_id: int, seq: int, item: T) -> Step[T]:
        """An event from the bus."""
        state = self._state(incident_id)
        if state.filling:
            state.held.append((seq, item))
            return _NOTHING
        if seq <= state.seen:
            return _NOTHING
        if seq == state.seen + 1:
            state.seen = seq
            if not state.held:
                return Step(dispatch=((seq, item),))
            return Step(dispatch=[(seq, item), *_release(state)])
        state.held.append((seq, item))
        if state.waiting:
            return _NOTHING
        state.waiting = True
        return Step(wait=True)

    def grace_over(self, incident_id: int) -> Step[T]:
        """The grace timer fired: a seq still missing is read from the store."""
        state = self._state(incident_id)
        state.waiting = False
        if state.held and not state.filling:
            state.filling = True
            return Step(fill=True)
        return _NOTHING

    def filled(self, incident_id: int, stored: Iterable[tuple[int, T]]) -> Step[T]:
        """The store's events after `seen(incident_id)`, in seq order: dispatch those that
        are next, then what was held; `fill` again while something is still held."""
        state = self._state(incident_id)
        dispatch: list[tuple[int, T]] = []
        for seq, item in stored:
            if seq == state.seen + 1:
                state.seen = seq
                dispatch.append((seq, item))
        dispatch.extend(_release(state))
        return Step(dispatch=dispatch, fill=bool(state.held))

    def fill_ended(self, incident_id: int, *, gave_up: bool) -> int | None:
        """The store reads are over; on giving up, what was held is dropped (the check
        retries) and the last seq dropped is returned."""
        state = self._state(incident_id)
        state.filling = False
        if not gave_up or not state.held:
            return None
        last = max(seq for seq, _ in state.held)
        state.held.clear()
        return last

    def check(self, last_seqs: Mapping[int, int], *, force: bool) -> list[int]:
        """The incidents to fill now, given the store's newest seqs.

        Unless forced (after a lost bus connection), an incident must be behind on two
        checks in a row, so an event whose publish is merely in flight is not read twice.
        """
        to_fill: list[int] = []
        for incident_id, last in last_seqs.items():
            state = self._state(incident_id)
            if last <= state.seen or state.filling:
                state.behind_since_check = False
                continue
            if force or state.behind_since_check:
                state.filling = True
                to_fill.append(incident_id)
            state.behind_since_check = not force
        return to_fill

    def _state(self, incident_id: int) -> _Incident[T]:
        state = self._incidents.get(incident_id)
        if state is None:
            state = self._incidents[incident_id] = _Incident()
        return state


_NOTHING: Step[Any] = Step()


def _release(state: _Incident[T]) -> list[tuple[int, T]]:
    """The held items that are next in order, advancing `seen`; the rest stay held and
    any at or below `seen` are dropped."""
    held, state.held = sorted(state.held, key=lambda h: h[0]), []
    released: list[tuple[int, T]] = []
    for seq, item in held:
        if seq == state.seen + 1:
            state.seen = seq
            released.append((seq, item))
        elif seq > state.seen + 1:
            state.held.append((seq, item))
    return released
