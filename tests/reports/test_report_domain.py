"""The report's pure functions over plain events, without a database: what a fold makes of
events the commands never write in that order too (a claim's own clock, a request given
back), and the situation report's totals at a period's end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from service.domain.report_charts import report_charts
from service.domain.reports import (
    ClaimSnapshot,
    ReportEvent,
    RequestSnapshot,
    after_action_report,
    report_csv,
    resource_totals,
)

T0 = datetime(2026, 2, 12, 8, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def request(id_: int, claimed: int, delivered: int = 0, status: str = "open") -> RequestSnapshot:
    return RequestSnapshot(id_, "cots", "infrastructure", 4, claimed, delivered, status, 0)


def claim(id_: int, city: int, quantity: int, status: str) -> ClaimSnapshot:
    return ClaimSnapshot(id_, 1, city, quantity, status)


def event(seq: int, type_: str, minute: int, city: int, **parts: Any) -> ReportEvent:
    return ReportEvent(seq, type_, at(minute), city, **parts)


PARTLY, FULL = "partially_claimed", "claimed"
EVENTS = [
    event(1, "incident.declared", 0, 1),
    event(2, "request.raised", 0, 1, request=request(1, 0)),
    event(3, "claim.made", 5, 2, claim=claim(1, 2, 3, "claimed"), request=request(1, 3, 0, PARTLY)),
    event(4, "claim.made", 7, 3, claim=claim(2, 3, 1, "claimed"), request=request(1, 4, 0, FULL)),
    event(
        5,
        "claim.changed",
        9,
        3,
        claim=claim(2, 3, 1, "withdrawn"),
        request=request(1, 3, 0, PARTLY),
    ),
    event(6, "claim.made", 12, 2, claim=claim(3, 2, 1, "claimed"), request=request(1, 4, 0, FULL)),
    event(
        7, "claim.changed", 20, 1, claim=claim(1, 2, 3, "accepted"), request=request(1, 4, 0, FULL)
    ),
]


def test_filled_is_the_first_time_every_unit_was_committed() -> None:
    report = after_action_report(9, 1, EVENTS, now=at(30))
    (r,) = report.requests
    assert (r.raised_at, r.first_claim_at, r.filled_at) == (at(0), at(5), at(7))
    assert r.fill_series == [(at(0), 0), (at(5), 3), (at(7), 4), (at(9), 3), (at(12), 4)]
    assert r.helping_city_ids == [2, 3]
    assert r.all_on_site_at is None and r.seconds_to(r.filled_at) == 420.0
    assert report.counts.withdrawals == 1
    two, three = report.cities
    assert (two.city_id, two.claim_count, two.units_claimed, two.resources) == (
        2,
        2,
        4,
        {"cots": 4},
    )
    assert (three.city_id, three.withdrawn_count) == (3, 1)
    assert report.claims[0].status_at == {"accepted": at(20)}


def test_a_sitreps_totals_are_the_state_at_the_end_of_its_period() -> None:
    (at_6,) = resource_totals(EVENTS, at(0), at(6))
    assert (at_6.requested, at_6.requested_in_period, at_6.committed, at_6.on_site) == (4, 4, 3, 0)
    (at_10,) = resource_totals(EVENTS, at(8), at(10))
    assert (at_10.requested_in_period, at_10.committed) == (0, 3)
    ended = event(8, "request.cancelled", 25, 1, request=request(1, 0, 0, "cancelled"))
    cancelled = [*EVENTS, ended]
    assert resource_totals(cancelled, at(0), at(30)) == []


def test_the_csv_has_a_row_per_request_and_empty_cells_for_clocks_that_never_stopped() -> None:
    lines = report_csv(after_action_report(9, 1, EVENTS, now=at(30))).splitlines()
    assert lines[0].startswith("request_id,resource,kind,quantity,status")
    assert len(lines) == 2
    assert ",2026-02-12T08:07:00+00:00,," in lines[1]  # filled, then no on-site or end time
    assert lines[1].endswith(",0@2026-02-12T08:00:00+00:00,,2;3")  # rings, no pass, cities


def test_a_pass_is_kept_with_its_ring_and_credited_to_a_city_that_never_claimed() -> None:
    passed = event(8, "request.passed", 14, 4, request=request(1, 4, 0, FULL))
    report = after_action_report(9, 1, [*EVENTS, passed], now=at(30))
    (r,) = report.requests
    assert [tuple(p) for p in r.passes] == [(4, 0, at(14))]
    assert report.counts.passes == 1
    four = next(c for c in report.cities if c.city_id == 4)
    assert (four.pass_count, four.claim_count, four.units_claimed) == (1, 0, 0)
    row = report_csv(report).splitlines()[1]
    assert row.endswith(",0@2026-02-12T08:00:00+00:00,4@2026-02-12T08:14:00+00:00,2;3")
    # The claims chart draws the cities that claimed, not one that only passed.
    assert 'data-series="city-4"' not in report_charts(report, {})["claims"]


def test_names_in_the_charts_are_escaped() -> None:
    report = after_action_report(9, 1, EVENTS, now=at(30))
    charts = report_charts(report, {1: "Nairobi", 2: "<script>alert(1)</script>", 3: "A & B"})
    assert "<script>" not in charts["claims"] + charts["flow"]
    assert "&lt;script&gt;" in charts["claims"]
    assert "A &amp; B" in charts["flow"]
