"""Per-incident order as pure decisions: given an incident, a seq and an item, what to
dispatch now, when to wait, when to read the store. No loop, no timer, no socket."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from realtime.sequencer import Sequencer, Step

A, B = 7, 8  # two incidents


def _seqs(step: Step[str]) -> list[int]:
    return [seq for seq, _ in step.dispatch]


def test_the_next_seq_is_dispatched_at_once() -> None:
    order: Sequencer[str] = Sequencer({A: 4})
    assert order.accept(A, 5, "e5") == Step(dispatch=((5, "e5"),))
    assert order.seen(A) == 5


def test_an_incident_never_seen_starts_at_seq_one() -> None:
    order: Sequencer[str] = Sequencer()
    assert _seqs(order.accept(A, 1, "e1")) == [1]
    assert order.seen(B) == 0


def test_a_seq_already_dispatched_or_older_than_the_start_is_dropped() -> None:
    order: Sequencer[str] = Sequencer({A: 4})
    assert order.accept(A, 3, "old") == Step()
    assert order.accept(A, 4, "again") == Step()
    order.accept(A, 5, "e5")
    assert order.accept(A, 5, "e5 twice") == Step()


def test_a_seq_that_skips_ahead_is_held_and_the_incident_waits() -> None:
    order: Sequencer[str] = Sequencer()
    assert order.accept(A, 2, "e2") == Step(wait=True)
    # One grace timer per incident, however many seqs are held.
    assert order.accept(A, 3, "e3") == Step()
    assert order.held(A) == [2, 3]
    # Another incident is not held back.
    assert _seqs(order.accept(B, 1, "b1")) == [1]


def test_the_missing_seq_releases_what_was_held_in_order() -> None:
    order: Sequencer[str] = Sequencer()
    order.accept(A, 3, "e3")
    order.accept(A, 2, "e2")
    step = order.accept(A, 1, "e1")
    assert step.dispatch == [(1, "e1"), (2, "e2"), (3, "e3")]
    assert order.held(A) == []
    # The grace timer fires later, with nothing left to fill.
    assert order.grace_over(A) == Step()


def test_a_seq_still_missing_after_the_grace_is_read_from_the_store() -> None:
    order: Sequencer[str] = Sequencer()
    order.accept(A, 2, "e2")
    order.accept(A, 3, "e3")
    assert order.grace_over(A) == Step(fill=True)
    # Arrivals during the fill are held behind it, even the next seq.
    assert order.accept(A, 1, "e1 from the bus") == Step()
    step = order.filled(A, [(1, "e1 stored"), (2, "e2 stored")])
    # The store's events first, then what was held; nothing twice.
    assert step.dispatch == [(1, "e1 stored"), (2, "e2 stored"), (3, "e3")]
    assert step.fill is False
    assert order.fill_ended(A, gave_up=False) is None
    assert order.seen(A) == 3


def test_a_fill_that_cannot_close_the_gap_asks_to_read_again_then_gives_up() -> None:
    order: Sequencer[str] = Sequencer()
    order.accept(A, 3, "e3")
    order.grace_over(A)
    step = order.filled(A, [(1, "e1")])  # seq 2 is not committed yet
    assert step.dispatch == [(1, "e1")] and step.fill is True
    assert order.filled(A, []) == Step(dispatch=[], fill=True)
    # Given up: what was held is dropped; the periodic check fills it later.
    assert order.fill_ended(A, gave_up=True) == 3
    assert order.held(A) == []
    assert order.check({A: 3}, force=False) == []
    assert order.check({A: 3}, force=False) == [A]


def test_the_check_fills_an_incident_behind_on_two_checks_in_a_row() -> None:
    order: Sequencer[str] = Sequencer({A: 2, B: 5})
    # Behind once: maybe a publish in flight.
    assert order.check({A: 3, B: 5}, force=False) == []
    assert _seqs(order.accept(A, 3, "e3")) == [3]
    assert order.check({A: 3, B: 5}, force=False) == []
    # Behind twice: the publish never happened.
    assert order.check({A: 4, B: 5}, force=False) == []
    assert order.check({A: 4, B: 5}, force=False) == [A]
    # Filling: not asked again until it ends.
    assert order.check({A: 4, B: 5}, force=True) == []
    step = order.filled(A, [(4, "e4")])
    assert step == Step(dispatch=[(4, "e4")], fill=False)
    order.fill_ended(A, gave_up=False)
    assert order.check({A: 4, B: 5}, force=False) == []


def test_a_forced_check_fills_at_once_and_an_unknown_incident_from_its_start() -> None:
    order: Sequencer[str] = Sequencer({A: 2})
    assert order.check({A: 3, B: 1}, force=True) == [A, B]
    assert order.seen(B) == 0


@given(
    count=st.integers(1, 30),
    seed=st.integers(0, 2**32),
    lost=st.sets(st.integers(1, 30), max_size=5),
    duplicated=st.sets(st.integers(1, 30), max_size=5),
)
def test_any_arrival_order_with_fills_dispatches_each_seq_once_in_order(
    count: int, seed: int, lost: set[int], duplicated: set[int]
) -> None:
    """Shuffled, duplicated and lost bus messages, the grace timer firing after every
    arrival and each fill reading the whole store: seqs 1..count, each once, in order."""
    store = [(seq, f"e{seq}") for seq in range(1, count + 1)]
    arrivals = [s for s in store if s[0] not in lost] + [s for s in store if s[0] in duplicated]
    random.Random(seed).shuffle(arrivals)
    order: Sequencer[str] = Sequencer()
    dispatched: list[int] = []

    def carry_out(step: Step[str]) -> None:
        dispatched.extend(_seqs(step))
        if step.wait and order.grace_over(A).fill:
            fill()

    def fill() -> None:
        while True:
            step = order.filled(A, [s for s in store if s[0] > order.seen(A)])
            dispatched.extend(_seqs(step))
            if not step.fill:
                break
        order.fill_ended(A, gave_up=False)

    for seq, item in arrivals:
        carry_out(order.accept(A, seq, item))
    for incident in order.check({A: count}, force=True):
        assert incident == A
        fill()
    assert dispatched == list(range(1, count + 1))
