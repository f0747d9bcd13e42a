"""Prometheus metrics an operator alerts on: the requests waiting for help, how fast help
comes, and the HTTP traffic by route (the live path's own are in `realtime/metrics.py`).

Three sources, each cheap:

- gauges of what is open now, read from the database when `/metrics` is scraped
  (`refresh_open_request_gauges`: two aggregate queries). Every replica reports
  the same database-wide figures: alert on their max, not their sum;
- counters and histograms of what happened, from the events each command
  commits, observed where the executor hands them to the bus (`observe_events`);
  they count what this replica did, so sum them over replicas;
- HTTP requests by route template and status, from the request log middleware
  (`observe_http`). Templates, never raw paths: a path holds ids, and a label
  per id would grow without bound.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import func
from sqlmodel import Session, col, select

from service.domain.events import EventType
from service.domain.lifecycles import CLAIMABLE_REQUEST_STATUSES, PRIORITY_ORDER, ClaimStatus
from service.persistence.tables import AidRequest

PRIORITIES = PRIORITY_ORDER

OPEN_REQUESTS = Gauge(
    "aidmesh_open_requests",
    "Requests with units still unclaimed (open or partially claimed), by priority",
    ["priority"],
)
CRITICAL_UNCLAIMED = Gauge(
    "aidmesh_critical_requests_unclaimed",
    "Critical requests with units still unclaimed",
)
CRITICAL_OLDEST_AGE = Gauge(
    "aidmesh_critical_request_oldest_unclaimed_age_seconds",
    "Age of the oldest critical request with units still unclaimed (0 when there is none)",
)

# From a minute to a day: help across cities takes minutes to hours.
_WAIT_BUCKETS = (10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400)
TIME_TO_FIRST_CLAIM = Histogram(
    "aidmesh_request_time_to_first_claim_seconds",
    "From a request being raised to a claim on it while nothing else was claimed of it",
    buckets=_WAIT_BUCKETS,
)
TIME_TO_FILL = Histogram(
    "aidmesh_request_time_to_fill_seconds",
    "From a request being raised to a claim that leaves nothing unclaimed",
    buckets=_WAIT_BUCKETS,
)
ESCALATIONS = Counter(
    "aidmesh_request_escalations_total", "Requests widened to the next ring", ["ring"]
)
EXPIRIES = Counter("aidmesh_expiries_total", "Requests and claims that expired", ["kind"])
CLAIMS = Counter(
    "aidmesh_claims_total",
    "Claims made (outcome=made) and the states claims moved to since",
    ["outcome"],
)

HTTP_REQUESTS = Counter(
    "aidmesh_http_requests_total",
    "HTTP requests and websocket handshakes, by route template and status",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "aidmesh_http_request_duration_seconds",
    "HTTP request durations, by route template",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

_OUTCOMES = frozenset(s.value for s in ClaimStatus)


def observe_http(method: str, route: str, status: int, duration_s: float | None) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    if duration_s is not None:
        HTTP_DURATION.labels(method, route).observe(duration_s)


def observe_events(events: Iterable[Any]) -> None:
    """Count what the committed events say happened (`EventPublic`s)."""
    for event in events:
        kind = event.type
        if kind == EventType.CLAIM_MADE:
            CLAIMS.labels("made").inc()
            _observe_waits(event.data, event.occurred_at)
        elif kind == EventType.CLAIM_CHANGED:
            status = (event.data.get("claim") or {}).get("status")
            if status in _OUTCOMES:
                CLAIMS.labels(status).inc()
                if status == ClaimStatus.EXPIRED:
                    EXPIRIES.labels("claim").inc()
        elif kind == EventType.REQUEST_ESCALATED:
            ring = (event.data.get("request") or {}).get("ring")
            ESCALATIONS.labels(str(ring) if isinstance(ring, int) else "unknown").inc()
        elif kind == EventType.REQUEST_EXPIRED:
            EXPIRIES.labels("request").inc()


def _observe_waits(data: dict[str, Any], occurred_at: datetime) -> None:
    request = data.get("request") or {}
    claim = data.get("claim") or {}
    raised = request.get("created_at")
    if raised is None:
        return
    raised_at = raised if isinstance(raised, datetime) else datetime.fromisoformat(raised)
    waited_s = max(0.0, (occurred_at - raised_at).total_seconds())
    if request.get("claimed_quantity") == claim.get("quantity"):
        TIME_TO_FIRST_CLAIM.observe(waited_s)
    if request.get("remaining_quantity") == 0:
        TIME_TO_FILL.observe(waited_s)


def refresh_open_request_gauges(session: Session, now: datetime) -> None:
    """Read what is open now into the gauges: one aggregate query each."""
    claimable = [s.value for s in CLAIMABLE_REQUEST_STATUSES]
    by_priority = dict(
        session.exec(
            select(AidRequest.priority, func.count())
            .where(col(AidRequest.status).in_(claimable))
            .group_by(col(AidRequest.priority))
        ).all()
    )
    for priority in PRIORITIES:
        OPEN_REQUESTS.labels(priority).set(by_priority.get(priority, 0))
    count, oldest = session.exec(
        select(func.count(), func.min(AidRequest.created_at)).where(
            col(AidRequest.status).in_(claimable), col(AidRequest.priority) == "critical"
        )
    ).one()
    CRITICAL_UNCLAIMED.set(count)
    CRITICAL_OLDEST_AGE.set(_age_s(oldest, now) if oldest is not None else 0.0)


def _age_s(then: datetime, now: datetime) -> float:
    if then.tzinfo is None:  # SQLite hands back naive UTC
        then = then.replace(tzinfo=now.tzinfo)
    return max(0.0, (now - then).total_seconds())


# Webhooks (service/webhooks/worker.py): counted by the replica that attempted them; the
# backlog gauges are set by the replica holding the endpoint's lease and dropped by it when
# the lease goes, so across replicas take their max (or sum) per endpoint.
WEBHOOK_DELIVERIES = Counter(
    "aidmesh_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, retrying, failed, gone)",
    ["outcome"],
)
WEBHOOK_QUEUE_DEPTH = Gauge(
    "aidmesh_webhook_queue_depth",
    "Events recorded past an endpoint's cursors, not yet delivered (an upper bound)",
    ["endpoint"],
)
WEBHOOK_OLDEST_AGE = Gauge(
    "aidmesh_webhook_oldest_undelivered_age_seconds",
    "Age of the oldest event not yet delivered to an endpoint (0 when none waits)",
    ["endpoint"],
)


def observe_webhook_backlog(
    endpoint_id: int, depth: int, oldest_at: datetime | None, now: datetime
) -> None:
    label = str(endpoint_id)
    WEBHOOK_QUEUE_DEPTH.labels(label).set(depth)
    age = (now - oldest_at).total_seconds() if oldest_at is not None else 0.0
    WEBHOOK_OLDEST_AGE.labels(label).set(max(age, 0.0))


def forget_webhook_endpoint(endpoint_id: int) -> None:
    for gauge in (WEBHOOK_QUEUE_DEPTH, WEBHOOK_OLDEST_AGE):
        with contextlib.suppress(KeyError):
            gauge.remove(str(endpoint_id))
