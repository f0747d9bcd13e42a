"""Record what happened, then check it: the shared "nothing lost" checker of the realtime tests.

Clients log every event they receive (incident, seq, event id) and every
`reset` they are given; load generators log every write with its outcome
(ok, failed, unknown). After the run quiets down, `check` compares the logs
with the events table:

- every ok write is in the events table;
- each client's received seqs per incident, after removing duplicates (and
  counting the ranges a `reset` snapshot covered), are exactly 1..last;
- every received event is the one the table holds at that seq (same event id);
- duplicates, silent gaps (a seq that skipped ahead with no reset) and
  reorderings are counted.

`check` returns a `Summary` whose text the tests print, so the figures show in
the test output.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg

OK, FAILED, UNKNOWN = "ok", "failed", "unknown"


@dataclass
class ClientLog:
    """What one client saw, across all its connections."""

    name: str
    events: list[tuple[int, int, str]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # time.monotonic() of each event
    resets: list[tuple[int, int, int]] = field(default_factory=list)  # incident, had, last_seq
    latencies_s: list[float] = field(default_factory=list)
    silent_gaps: int = 0
    connects: int = 0
    subscribed: int = 0
    closes: list[tuple[int | None, str]] = field(default_factory=list)
    _last: dict[int, int] = field(default_factory=dict)

    def event(self, incident_id: int, seq: int, event_id: str, latency_s: float | None) -> None:
        last = self._last.get(incident_id, 0)
        if seq > last + 1:
            self.silent_gaps += 1
        self._last[incident_id] = max(last, seq)
        self.events.append((incident_id, seq, event_id))
        self.arrivals.append(time.monotonic())
        if latency_s is not None:
            self.latencies_s.append(latency_s)

    def reset(self, incident_id: int, last_seq: int) -> None:
        had = self._last.get(incident_id, 0)
        self.resets.append((incident_id, had, last_seq))
        self._last[incident_id] = max(had, last_seq)


@dataclass
class Write:
    op: str  # e.g. "raise", "claim"
    outcome: str  # ok | failed | unknown
    kind: str | None = None  # the object an ok write made: "request", "claim"
    object_id: int | None = None
    status: int | None = None
    detail: str = ""
    took_s: float = 0.0
    retry_after: str | None = None  # the Retry-After header of a refusal


class History:
    """The shared log of a run: one `ClientLog` per client, and every write."""

    def __init__(self) -> None:
        self.clients: dict[str, ClientLog] = {}
        self.writes: list[Write] = []
        self.started = time.monotonic()

    def client(self, name: str) -> ClientLog:
        if name not in self.clients:
            self.clients[name] = ClientLog(name)
        return self.clients[name]

    def write(self, write: Write) -> None:
        self.writes.append(write)

    def statuses(self) -> Counter[int | None]:
        return Counter(w.status for w in self.writes)


@dataclass
class Truth:
    """The events table, per incident: seq -> (event id, type, data)."""

    events: dict[int, dict[int, tuple[str, str, dict[str, Any]]]]
    last_seq: dict[int, int]

    def ids(self, incident_id: int) -> list[tuple[int, str]]:
        return [(s, e[0]) for s, e in sorted(self.events.get(incident_id, {}).items())]


def load_truth(database_url: str, incident_ids: Iterable[int]) -> Truth:
    """Read the events and each incident's `last_seq` straight from PostgreSQL."""
    wanted = sorted(set(incident_ids))
    events: dict[int, dict[int, tuple[str, str, dict[str, Any]]]] = {i: {} for i in wanted}
    last_seq: dict[int, int] = {}
    with psycopg.connect(database_url) as conn:
        for incident_id, seq, event_id, type_, data in conn.execute(
            "SELECT incident_id, seq, event_id, type, data FROM events"
            " WHERE incident_id = ANY(%s) ORDER BY incident_id, seq",
            (wanted,),
        ):
            events[incident_id][seq] = (event_id, type_, data)
        for incident_id, last in conn.execute(
            "SELECT id, last_seq FROM incidents WHERE id = ANY(%s)", (wanted,)
        ):
            last_seq[incident_id] = last
    return Truth(events, last_seq)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[max(0, int(q * 1000) - 1)]


@dataclass
class Summary:
    clients: int = 0
    incidents: int = 0
    table_events: int = 0
    table_gaps: int = 0  # seqs missing from the events table itself, or last_seq disagreeing
    expected: int = 0  # sum over clients and incidents of `last`
    received: int = 0
    duplicates: int = 0
    lost: int = 0
    phantoms: int = 0  # received seqs the table does not hold
    mismatched: int = 0  # received event id differs from the table's at that seq
    reordered: int = 0  # a seq lower than one already received on the same connection run
    silent_gaps: int = 0
    resets: int = 0
    covered_by_reset: int = 0
    connects: int = 0
    writes: Counter[str] = field(default_factory=Counter)
    ok_writes_missing: int = 0
    lost_detail: list[str] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Nothing lost, nothing foreign, every ok write recorded."""
        return not (
            self.lost
            or self.phantoms
            or self.mismatched
            or self.table_gaps
            or self.ok_writes_missing
            or self.silent_gaps
        )

    def latency(self) -> str:
        if not self.latencies_s:
            return "n/a"
        ms = [x * 1000 for x in self.latencies_s]
        return (
            f"p50={percentile(ms, 0.5):.1f}ms p99={percentile(ms, 0.99):.1f}ms "
            f"max={max(ms):.1f}ms over {len(ms)}"
        )

    def __str__(self) -> str:
        lines = [
            f"clients={self.clients} incidents={self.incidents} table_events={self.table_events}"
            f" table_gaps={self.table_gaps}",
            f"expected={self.expected} received={self.received} duplicates={self.duplicates}"
            f" lost={self.lost} phantoms={self.phantoms} mismatched={self.mismatched}"
            f" reordered={self.reordered} silent_gaps={self.silent_gaps}",
            f"resets={self.resets} covered_by_reset={self.covered_by_reset}"
            f" connects={self.connects}",
            f"writes={dict(self.writes)} ok_writes_missing={self.ok_writes_missing}",
            f"latency {self.latency()}",
        ]
        if self.lost_detail:
            lines.append("lost: " + "; ".join(self.lost_detail[:10]))
        return "\n".join(lines)


def _made_objects(truth: Truth) -> set[tuple[str, int]]:
    """(kind, id) of every request and claim the events table records as made."""
    made: set[tuple[str, int]] = set()
    for per_incident in truth.events.values():
        for _event_id, type_, data in per_incident.values():
            if type_ == "request.raised":
                made.add(("request", int(data["request"]["id"])))
            elif type_ == "claim.made":
                made.add(("claim", int(data["claim"]["id"])))
            elif type_ == "incident.declared":
                made.add(("incident", int(data["incident"]["id"])))
    return made


def check(history: History, truth: Truth, incidents: Iterable[int] | None = None) -> Summary:
    """Compare every client's log (for `incidents`, default all in `truth`) with the table."""
    wanted = sorted(set(incidents) if incidents is not None else truth.events)
    summary = Summary(clients=len(history.clients), incidents=len(wanted))
    for incident_id in wanted:
        table = truth.events.get(incident_id, {})
        summary.table_events += len(table)
        last = truth.last_seq.get(incident_id, 0)
        summary.table_gaps += sum(1 for s in range(1, last + 1) if s not in table)
        summary.table_gaps += sum(1 for s in table if s > last)

    for log in history.clients.values():
        summary.connects += log.connects
        summary.silent_gaps += log.silent_gaps
        summary.latencies_s.extend(log.latencies_s)
        for incident_id in wanted:
            table = truth.events.get(incident_id, {})
            last = truth.last_seq.get(incident_id, 0)
            got = [(s, e) for i, s, e in log.events if i == incident_id]
            seqs = [s for s, _ in got]
            unique = set(seqs)
            summary.expected += last
            summary.received += len(got)
            summary.duplicates += len(seqs) - len(unique)
            high, seen = 0, set()
            for s in seqs:
                if s < high and s not in seen:
                    summary.reordered += 1
                high = max(high, s)
                seen.add(s)
            for s, event_id in got:
                if s not in table:
                    summary.phantoms += 1
                elif table[s][0] != event_id:
                    summary.mismatched += 1
            covered = set(unique)
            for i, had, reset_to in log.resets:
                if i == incident_id:
                    summary.resets += 1
                    span = set(range(had + 1, reset_to + 1)) - unique
                    summary.covered_by_reset += len(span)
                    covered |= span
            missing = [s for s in range(1, last + 1) if s not in covered]
            if missing:
                summary.lost += len(missing)
                summary.lost_detail.append(
                    f"{log.name} incident {incident_id}: {len(missing)} missing,"
                    f" first {missing[:5]}"
                )

    made = _made_objects(truth)
    for write in history.writes:
        summary.writes[write.outcome] += 1
        if (
            write.outcome == OK
            and write.kind is not None
            and (write.kind, write.object_id) not in made
        ):
            summary.ok_writes_missing += 1
    return summary


def check_against_table(history: History, database_url: str) -> Summary:
    """`check` every incident any client heard of against the events table."""
    incidents = {i for log in history.clients.values() for i, _, _ in log.events}
    return check(history, load_truth(database_url, incidents))


def live_pause_s(history: History, start: float, end: float) -> tuple[float, float]:
    """The longest time, per client, between two events arriving within [start, end]
    (its edges count as arrivals): the largest and the median over the clients."""
    pauses = []
    for log in history.clients.values():
        times = [start, *(t for t in log.arrivals if start <= t <= end), end]
        pauses.append(max(b - a for a, b in itertools.pairwise(times)))
    if not pauses:
        return float("nan"), float("nan")
    return max(pauses), statistics.median(pauses)
