"""The open-data observatory: what a network publishes of its closed incidents, and the
shapes it publishes them in (GeoJSON, CSV with an HXL hashtag row, chart series).

Pure: the query hands in plain rows; the rules of what may leave live here. Only
figures, catalogue words and the names of cities that opted in ever leave: no title,
description, note, answer, report-to address, contact or token is ever an input.
A helper that did not opt in is counted under `OTHER_CITIES`, so totals stay true
without naming it.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from service.domain.track_records import RequestTimeline, percentile, track_record

OTHER_CITIES = "other cities"
"""How a helping city that did not opt in is named: one bucket per request."""

COORDINATE_DECIMALS = 2
"""Incident points are rounded to about a kilometre: a point may be someone's home."""

LICENCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.+-]{0,63}$"
"""An SPDX-style licence identifier, e.g. `CC-BY-4.0` or `ODbL-1.0`."""

MAX_PUBLICATION_DELAY_DAYS = 3650

# Claims that ended early gave their units back: they are no aid given.
EARLY_ENDS = frozenset({"withdrawn", "declined", "expired"})
ON_SITE = frozenset({"on_site", "released"})


class IncidentRow(NamedTuple):
    incident_id: int
    city_id: int  # the requesting city
    incident_type: str
    severity: str
    lat: float
    lon: float
    exercise: bool
    declared_at: datetime
    closed_at: datetime | None


class RequestRow(NamedTuple):
    request_id: int
    incident_id: int
    kind: str
    resource: str
    quantity: int
    raised_at: datetime
    first_claim_at: datetime | None
    fulfilled_at: datetime | None
    expired: bool

    def timeline(self) -> RequestTimeline:
        return RequestTimeline(
            raised_at=self.raised_at,
            first_claim_at=self.first_claim_at,
            fulfilled_at=self.fulfilled_at,
            expired=self.expired,
            escalation_count=0,  # not published
        )


class ClaimTotal(NamedTuple):
    """One city's claims on one request that did not end early, summed."""

    request_id: int
    city_id: int
    units: int
    units_on_site: int
    first_claimed_at: datetime


@dataclass(frozen=True, slots=True)
class Published:
    """What a network's observatory may show, as plain values."""

    network_id: int
    network_slug: str
    network_name: str
    licence: str
    publication_delay_days: int
    published_through: datetime  # incidents closed at or before this time
    city_names: Mapping[int, str]  # the cities that opted in: the only names that leave
    incidents: list[IncidentRow]
    requests: list[RequestRow]
    claims: list[ClaimTotal]
    incident_count: int  # every publishable incident, beyond this page of them


@dataclass(frozen=True, slots=True)
class IncidentFigures:
    incident_id: int
    incident_type: str
    severity: str
    requesting_city: str
    lon: float
    lat: float
    declared_at: datetime
    closed_at: datetime
    request_count: int
    units_requested: int
    units_claimed: int
    units_on_site: int
    helping_city_count: int
    first_claim_p50_s: float | None
    fill_p50_s: float | None
    fill_rate: float | None


class AidFlow(NamedTuple):
    incident_id: int
    incident_type: str
    helping_city: str
    requesting_city: str
    kind: str
    resource: str
    units: int
    units_on_site: int
    raised_at: datetime
    first_claimed_at: datetime
    closed_at: datetime
    request_first_claim_s: float | None
    request_fill_s: float | None


@dataclass(frozen=True, slots=True)
class CityAid:
    city: str
    units_given: int
    units_received: int


@dataclass(frozen=True, slots=True)
class MonthFill:
    month: str  # YYYY-MM, of the requests' raising
    request_count: int
    filled_count: int
    fill_p50_s: float | None


@dataclass(frozen=True, slots=True)
class Charts:
    aid_by_city: list[CityAid]
    fill_by_month: list[MonthFill]
    incidents_by_type: list[tuple[str, int]]


def valid_licence(licence: str) -> bool:
    return re.fullmatch(LICENCE_PATTERN, licence) is not None


def published_through(now: datetime, publication_delay_days: int) -> datetime:
    """Incidents closed at or before this time may be published."""
    return now - timedelta(days=publication_delay_days)


def publishable(
    incident: IncidentRow, opted_in: Iterable[int] | Mapping[int, Any], through: datetime
) -> bool:
    """Closed, not an exercise, of a city that opted in, and closed long enough ago."""
    return (
        not incident.exercise
        and incident.closed_at is not None
        and incident.closed_at <= through
        and incident.city_id in opted_in
    )


def _seconds(later: datetime | None, earlier: datetime) -> float | None:
    return None if later is None else (later - earlier).total_seconds()


def _by(rows: Iterable[Any], key: str) -> dict[int, list[Any]]:
    grouped: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[getattr(row, key)].append(row)
    return grouped


def _checked(published: Published) -> list[IncidentRow]:
    """The incidents, each checked against the rule once more: a query that let one
    through by mistake must not publish it."""
    return [
        i
        for i in published.incidents
        if publishable(i, published.city_names, published.published_through)
    ]


def incident_figures(published: Published) -> list[IncidentFigures]:
    requests = _by(published.requests, "incident_id")
    claims = _by(published.claims, "request_id")
    figures = []
    for incident in _checked(published):
        assert incident.closed_at is not None
        mine = requests.get(incident.incident_id, [])
        totals = [c for r in mine for c in claims.get(r.request_id, [])]
        record = track_record(1, [r.timeline() for r in mine])
        figures.append(
            IncidentFigures(
                incident_id=incident.incident_id,
                incident_type=incident.incident_type,
                severity=incident.severity,
                requesting_city=published.city_names[incident.city_id],
                lon=round(incident.lon, COORDINATE_DECIMALS),
                lat=round(incident.lat, COORDINATE_DECIMALS),
                declared_at=incident.declared_at,
                closed_at=incident.closed_at,
                request_count=len(mine),
                units_requested=sum(r.quantity for r in mine),
                units_claimed=sum(c.units for c in totals),
                units_on_site=sum(c.units_on_site for c in totals),
                helping_city_count=len({c.city_id for c in totals}),
                first_claim_p50_s=record.first_claim_p50_s,
                fill_p50_s=record.fill_p50_s,
                fill_rate=record.fill_rate,
            )
        )
    return figures


def aid_flows(published: Published) -> list[AidFlow]:
    """One flow per request and helping city, in the order the requests were raised;
    helpers that did not opt in are summed into one `OTHER_CITIES` flow per request."""
    incidents = {i.incident_id: i for i in _checked(published)}
    claims = _by(published.claims, "request_id")
    flows = []
    ordered = sorted(published.requests, key=lambda r: (r.incident_id, r.raised_at, r.request_id))
    for request in ordered:
        incident = incidents.get(request.incident_id)
        if incident is None:
            continue
        assert incident.closed_at is not None
        helpers: dict[str, list[ClaimTotal]] = defaultdict(list)
        for total in claims.get(request.request_id, []):
            helpers[published.city_names.get(total.city_id, OTHER_CITIES)].append(total)
        for helper, totals in sorted(helpers.items()):
            flows.append(
                AidFlow(
                    incident_id=incident.incident_id,
                    incident_type=incident.incident_type,
                    helping_city=helper,
                    requesting_city=published.city_names[incident.city_id],
                    kind=request.kind,
                    resource=request.resource,
                    units=sum(t.units for t in totals),
                    units_on_site=sum(t.units_on_site for t in totals),
                    raised_at=request.raised_at,
                    first_claimed_at=min(t.first_claimed_at for t in totals),
                    closed_at=incident.closed_at,
                    request_first_claim_s=_seconds(request.first_claim_at, request.raised_at),
                    request_fill_s=_seconds(request.fulfilled_at, request.raised_at),
                )
            )
    return flows


def charts(published: Published) -> Charts:
    """The page's three series: aid given and received per city, the median time to fill
    by month, incidents by type."""
    incidents = _checked(published)
    names = published.city_names
    requester = {i.incident_id: names[i.city_id] for i in incidents}
    requested_by = {
        r.request_id: requester[r.incident_id]
        for r in published.requests
        if r.incident_id in requester
    }
    # As the flows count them (`aid_flows`), without building each flow.
    given: Counter[str] = Counter()
    received: Counter[str] = Counter()
    for total in published.claims:
        to = requested_by.get(total.request_id)
        if to is not None:
            given[names.get(total.city_id, OTHER_CITIES)] += total.units
            received[to] += total.units
    cities = sorted(set(given) | set(received), key=lambda c: (-(given[c] + received[c]), c))
    kept = set(requester)
    months: dict[str, list[RequestTimeline]] = defaultdict(list)
    for request in published.requests:
        if request.incident_id in kept:
            months[request.raised_at.strftime("%Y-%m")].append(request.timeline())
    fill_by_month = []
    for month, timelines in sorted(months.items()):
        to_fill = [
            (t.fulfilled_at - t.raised_at).total_seconds()
            for t in timelines
            if t.fulfilled_at is not None
        ]
        fill_by_month.append(
            MonthFill(month, len(timelines), len(to_fill), percentile(to_fill, 0.5))
        )
    types = Counter(i.incident_type for i in incidents)
    return Charts(
        aid_by_city=[CityAid(c, given[c], received[c]) for c in cities],
        fill_by_month=fill_by_month,
        incidents_by_type=sorted(types.items(), key=lambda t: (-t[1], t[0])),
    )


def _time(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def feature_collection(published: Published) -> dict[str, Any]:
    """The incidents as a GeoJSON FeatureCollection (RFC 7946), the licence on each."""
    features = []
    for f in incident_figures(published):
        features.append(
            {
                "type": "Feature",
                "id": f.incident_id,
                "geometry": {"type": "Point", "coordinates": [f.lon, f.lat]},
                "properties": {
                    "incident_id": f.incident_id,
                    "incident_type": f.incident_type,
                    "severity": f.severity,
                    "requesting_city": f.requesting_city,
                    "declared_at": _time(f.declared_at),
                    "closed_at": _time(f.closed_at),
                    "request_count": f.request_count,
                    "units_requested": f.units_requested,
                    "units_claimed": f.units_claimed,
                    "units_on_site": f.units_on_site,
                    "helping_city_count": f.helping_city_count,
                    "first_claim_p50_s": f.first_claim_p50_s,
                    "fill_p50_s": f.fill_p50_s,
                    "fill_rate": f.fill_rate,
                    "licence": published.licence,
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "licence": published.licence,
        "network": published.network_slug,
        "published_through": _time(published.published_through),
        "incident_count": published.incident_count,
        "features": features,
    }


FLOW_COLUMNS: tuple[tuple[str, str], ...] = (
    ("incident_id", "#crisis+id"),
    ("incident_type", "#crisis+type"),
    ("helping_city", "#org+name+helping"),
    ("requesting_city", "#org+name+requesting"),
    ("resource_kind", "#item+kind"),
    ("resource", "#item+code"),
    ("units", "#item+num+committed"),
    ("units_on_site", "#item+num+delivered"),
    ("raised_at", "#date+raised"),
    ("first_claimed_at", "#date+claimed"),
    ("closed_at", "#date+closed"),
    ("request_first_claim_s", "#indicator+num+first_claim_s"),
    ("request_fill_s", "#indicator+num+fill_s"),
    ("licence", "#meta+licence"),
)
"""The CSV's columns: the header row, then the HXL hashtag row (hxlstandard.org)."""


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def flows_csv(published: Published) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([name for name, _ in FLOW_COLUMNS])
    writer.writerow([tag for _, tag in FLOW_COLUMNS])
    stamps: dict[datetime, str] = {}  # flows of one request or incident share their times

    def stamp(at: datetime) -> str:
        text = stamps.get(at)
        if text is None:
            text = stamps[at] = _time(at)
        return text

    licence = published.licence
    writer.writerows(
        (
            f.incident_id,
            f.incident_type,
            f.helping_city,
            f.requesting_city,
            f.kind,
            f.resource,
            f.units,
            f.units_on_site,
            stamp(f.raised_at),
            stamp(f.first_claimed_at),
            stamp(f.closed_at),
            _number(f.request_first_claim_s),
            _number(f.request_fill_s),
            licence,
        )
        for f in aid_flows(published)
    )
    return out.getvalue()
