"""The pure rules behind who is coming and when, notes, a playbook's chosen requests and
its checklists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.domain import checklists, declaring, dispatch, notes
from service.domain import lifecycles as lc
from service.domain.actors import Role
from service.domain.errors import Forbidden, Invalid

NOW = datetime(2026, 2, 12, 8, 0, tzinfo=UTC)


def test_an_eta_goes_only_with_en_route_and_only_in_the_future() -> None:
    soon = dispatch.Dispatch(eta_at=NOW + timedelta(minutes=1), team_size=3)
    dispatch.check_move_details(lc.ClaimStatus.EN_ROUTE, soon, None, now=NOW)
    dispatch.check_move_details(lc.ClaimStatus.EN_ROUTE, dispatch.Dispatch(), None, now=NOW)
    with pytest.raises(Invalid, match="eta must be in the future"):
        dispatch.check_move_details(
            lc.ClaimStatus.EN_ROUTE, dispatch.Dispatch(eta_at=NOW), None, now=NOW
        )
    with pytest.raises(Invalid, match="eta_at, team_size only go with a move to en_route"):
        dispatch.check_move_details(lc.ClaimStatus.ON_SITE, soon, None, now=NOW)


@pytest.mark.parametrize("status", list(lc.ClaimStatus))
def test_a_reason_goes_only_with_a_decline_or_a_withdrawal(status: lc.ClaimStatus) -> None:
    if status in (lc.ClaimStatus.DECLINED, lc.ClaimStatus.WITHDRAWN):
        dispatch.check_move_details(status, dispatch.Dispatch(), "why", now=NOW)
    else:
        with pytest.raises(Invalid):
            dispatch.check_move_details(status, dispatch.Dispatch(), "why", now=NOW)


def test_note_writers_are_the_requesting_reached_and_claiming_cities_managers_and_responders() -> (
    None
):
    writers = notes.request_note_writers(1, {2}, {3})
    assert writers == {1, 2, 3}
    assert notes.claim_note_writers(1, 3) == {1, 3}
    notes.check_note_writer(Role.RESPONDER, 2, writers, "request")
    with pytest.raises(Forbidden, match="observers and admins read notes"):
        notes.check_note_writer(Role.OBSERVER, 1, writers, "request")
    with pytest.raises(Forbidden, match="working on this request"):
        notes.check_note_writer(Role.MANAGER, 4, writers, "request")
    with pytest.raises(Forbidden):
        notes.check_note_writer(Role.ADMIN, None, writers, "request")


def test_choosing_a_playbooks_requests() -> None:
    written = [(2, "critical"), (40, "high"), (6, "normal")]
    assert [c.index for c in declaring.choose(written, None)] == [0, 1, 2]
    assert declaring.choose(written, []) == []
    chosen = declaring.choose(written, [declaring.Choice(2, 1), declaring.Choice(0, 5, "low")])
    assert chosen == [declaring.Chosen(0, 5, "low"), declaring.Chosen(2, 1, "normal")]
    with pytest.raises(Invalid, match="there is no index 3"):
        declaring.choose(written, [declaring.Choice(3, 1)])
    with pytest.raises(Invalid, match="index 1 is chosen twice"):
        declaring.choose(written, [declaring.Choice(1, 1), declaring.Choice(1, 2)])


def test_ticking_a_checklist_item_changes_a_copy_and_only_when_it_changes() -> None:
    lists = checklists.checklists_from([("Situation", ["Gauges", "Rain"])])
    ticked = checklists.tick(lists, 0, 1, True, now=NOW, city_id=7)
    assert ticked is not None
    assert ticked[0]["items"][1] == {
        "text": "Rain",
        "done": True,
        "done_at": NOW.isoformat(),
        "done_by_city_id": 7,
    }
    assert lists[0]["items"][1]["done"] is False  # the original is untouched
    assert checklists.tick(ticked, 0, 1, True, now=NOW, city_id=7) is None
    with pytest.raises(Invalid, match="there is no item 2"):
        checklists.tick(lists, 0, 2, True, now=NOW, city_id=7)
    with pytest.raises(Invalid, match="there is no checklist 1"):
        checklists.tick(lists, 1, 0, True, now=NOW, city_id=7)
