"""`aidmesh db copy`: a city's SQLite history, moved to PostgreSQL, is the same row for row,
and the service carries on from it: new ids do not collide, old idempotency keys still
answer with their claims, and a websocket resumes mid-incident without a gap.

The source is filled once per module by a realistic run (tests/persistence/realistic_run.py).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, Table, create_engine, inspect, select, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from service.cli import main
from service.main import create_app
from service.persistence.copy import SKIPPED, CopyRefused, CopyReport, copy_database
from service.persistence.db import alembic_config
from service.settings import Settings
from tests.persistence.realistic_run import RealisticRun, realistic_run
from tests.procs import scratch_sqlite
from tests.support import (
    FakeClock,
    app_settings,
    make_executor,
    missing,
    postgres_url,
    scratch_database,
)

API = "/api/v1"
EVENTS = 1_500


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, RealisticRun]]:
    """(SQLite URL, the run that filled it)."""
    url = scratch_sqlite(tmp_path_factory.mktemp("source"), "aidmesh.db")
    clock = FakeClock()
    executor = make_executor(app_settings(url), clock)
    started = time.monotonic()
    run = realistic_run(executor, clock, events=EVENTS)
    executor.db.dispose()
    print(f"\nrealistic run: {time.monotonic() - started:.1f} s, {run.outcomes}")
    yield url, run


def _postgres(tmp_path: Path) -> Iterator[str]:
    if postgres_url() is None:
        missing("DATABASE_URL does not name a PostgreSQL server")
    with scratch_database("postgresql", tmp_path) as url:
        yield url


@pytest.fixture
def pg_target(tmp_path: Path) -> Iterator[str]:
    yield from _postgres(tmp_path)


def _engine(url: str) -> Engine:
    return create_engine(Settings(database_url=url).database_url)


# Comparing two databases, each read on its own terms ---------------------------------------


def _normal(value: Any) -> Any:
    """One form for a value whichever database held it: SQLite keeps datetimes without a
    zone (in UTC), PostgreSQL with one; JSON may come back as text."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.dumps(json.loads(value), sort_keys=True)
        except ValueError:
            return value
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


def _table_rows(engine: Engine, name: str) -> list[tuple[tuple[str, Any], ...]]:
    with engine.connect() as conn:
        table = Table(name, MetaData(), autoload_with=conn)
        rows = conn.execute(select(table)).mappings().all()
    normal = [tuple(sorted((k, _normal(v)) for k, v in row.items())) for row in rows]
    return sorted(normal, key=repr)


def _tables(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(inspect(conn).get_table_names())


def _assert_same_rows(source: Engine, target: Engine, report: CopyReport) -> int:
    compared = 0
    for copied in report.tables:
        expected, got = _table_rows(source, copied.name), _table_rows(target, copied.name)
        assert len(got) == len(expected) == copied.rows, copied.name
        for want, have in zip(expected, got, strict=True):
            assert have == want, f"{copied.name}: {dict(have)} != {dict(want)}"
        compared += len(got)
    return compared


def _assert_every_table_copied_or_skipped(source: Engine, target: Engine, report: CopyReport):
    copied = {t.name for t in report.tables}
    assert not copied & set(SKIPPED)
    assert copied | set(SKIPPED) == _tables(source) == _tables(target)
    assert set(SQLModel.metadata.tables) <= copied


def _row_counts(engine: Engine, names: set[str]) -> dict[str, int]:
    with engine.connect() as conn:
        present = set(inspect(conn).get_table_names())
        return {
            n: conn.execute(text(f'SELECT count(*) FROM "{n}"')).scalar_one()  # noqa: S608
            for n in sorted(names & present)
        }


def _aidmesh_tables() -> set[str]:
    return set(SQLModel.metadata.tables)


# The move itself -------------------------------------------------------------------------


@pytest.mark.slow
def test_sqlite_history_copied_to_postgresql_is_the_same_and_the_service_carries_on(
    filled: tuple[str, RealisticRun], pg_target: str, tmp_path: Path
) -> None:
    source_url, run = filled
    lines: list[str] = []
    report = copy_database(
        source_url, pg_target, batch_rows=200, say=lines.append, progress_every_s=0
    )
    print("\n" + "\n".join(lines))
    print(
        f"copy SQLite → PostgreSQL: {len(report.tables)} tables, {report.rows:,} rows, "
        f"{report.seconds:.2f} s ({report.rows / report.seconds:,.0f} rows/s)"
    )
    source, target = _engine(source_url), _engine(pg_target)
    try:
        _assert_every_table_copied_or_skipped(source, target, report)
        compared = _assert_same_rows(source, target, report)
        assert compared == report.rows
        assert report.verified
        assert report.rows > EVENTS
        # A line per table, periodic progress on the large ones, and a summary.
        for copied in report.tables:
            assert any(line.startswith(f"{copied.name}: ") for line in lines), copied.name
        assert any(line.startswith("  events: 200/") and "rows/s" in line for line in lines)
        assert lines[-1].startswith(f"copied {len(report.tables)} tables, {report.rows:,} rows")
        with target.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            gaps = conn.execute(
                text(
                    "SELECT i.id FROM incidents i WHERE i.last_seq <>"
                    " (SELECT count(*) FROM events e WHERE e.incident_id = i.id)"
                    " OR i.last_seq <> (SELECT coalesce(max(seq), 0) FROM events e"
                    " WHERE e.incident_id = i.id)"
                )
            ).all()
        assert version == _head(source_url)
        assert gaps == []
        _service_carries_on(pg_target, run)
        _postgresql_to_postgresql_is_the_same(pg_target, tmp_path)
    finally:
        source.dispose()
        target.dispose()


def _head(url: str) -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert head is not None
    return head


def _max_id(url: str, table: str) -> int:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(f"SELECT max(id) FROM {table}")).scalar_one())  # noqa: S608
    finally:
        engine.dispose()


def _service_carries_on(url: str, run: RealisticRun) -> None:
    """The app on the copy: old keys replay, new rows get new ids, a socket resumes."""
    before = {t: _max_id(url, t) for t in ("claims", "incidents", "aid_requests", "events")}
    app = create_app(app_settings(url), clock=lambda: datetime.now(UTC))
    with TestClient(app) as client:
        _old_key_returns_the_original_claim(client, run, url, before["claims"])
        incident_id = _declare_and_claim(client, run, before)
        _resume_mid_incident(client, run)
        # And the admin API mints a token on the copied api_tokens table.
        r = client.post(
            f"{API}/tokens",
            headers=_auth(run, "admin"),
            json={"role": "observer", "city_id": run.city_ids["thika"], "label": "after move"},
        )
        assert r.status_code == 201, r.text
    assert incident_id == before["incidents"] + 1


def _auth(run: RealisticRun, key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {run.secret(key)}"}


def _old_key_returns_the_original_claim(
    client: TestClient, run: RealisticRun, url: str, max_claim_id: int
) -> None:
    for made in run.claims[:5]:
        r = client.post(
            f"{API}/requests/{made.request_id}/claims",
            headers={**_auth(run, f"responder:{made.city}"), "Idempotency-Key": made.key},
            json={"quantity": made.quantity},
        )
        assert r.status_code == 201, r.text
        assert r.headers.get("Idempotent-Replayed") == "true"
        assert r.json()["id"] == made.claim_id
    assert _max_id(url, "claims") == max_claim_id  # nothing new was claimed


def _declare_and_claim(client: TestClient, run: RealisticRun, before: dict[str, int]) -> int:
    manager = _auth(run, "manager:nairobi")
    r = client.post(
        f"{API}/incidents",
        headers=manager,
        json={"incident_type": "flood", "title": "Second Nairobi flood", "severity": "moderate"},
    )
    assert r.status_code == 201, r.text
    incident_id = int(r.json()["id"])
    r = client.post(
        f"{API}/incidents/{incident_id}/requests",
        headers=manager,
        json={"resource": "sandbags", "quantity": 500},
    )
    assert r.status_code == 201, r.text
    assert r.json()["id"] == before["aid_requests"] + 1
    r = client.post(
        f"{API}/requests/{r.json()['id']}/claims",
        headers={**_auth(run, "responder:thika"), "Idempotency-Key": "after-the-move-1"},
        json={"quantity": 40},
    )
    assert r.status_code == 201, r.text
    # Past every copied id (not necessarily the next one: PostgreSQL's claim path takes a
    # sequence value even for a replayed key).
    assert r.json()["id"] > before["claims"]
    r = client.get(f"{API}/incidents/{incident_id}/events?after=0", headers=manager)
    events = r.json()["data"]
    assert [e["seq"] for e in events] == [1, 2, 3]
    return incident_id


def _resume_mid_incident(client: TestClient, run: RealisticRun) -> None:
    """A client that saw half of the flood's events resumes: the rest, in order, no gap,
    then live events from the next seq on."""
    incident_id = run.incidents["nairobi"]
    manager = _auth(run, "manager:nairobi")
    detail = client.get(f"{API}/incidents/{incident_id}", headers=manager).json()
    last_seq = int(detail["last_seq"])
    since = last_seq // 2
    assert since > 50
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"op": "auth", "token": run.secret("observer:nairobi")})
        assert ws.receive_json()["type"] == "welcome"
        ws.send_json(
            {
                "op": "subscribe",
                "scopes": [f"incident:{incident_id}"],
                "since": {incident_id: since},
            }
        )
        seqs = []
        while (message := ws.receive_json())["type"] != "subscribed":
            assert message["type"] == "event", message
            assert message["event"]["incident_id"] == incident_id
            seqs.append(message["event"]["seq"])
        assert seqs == list(range(since + 1, last_seq + 1))
        r = client.post(f"{API}/incidents/{incident_id}/close", headers=manager)
        assert r.status_code == 200, r.text
        # Closing ends the open claims first, then the incident: live, in seq order.
        live: list[tuple[int, str]] = []
        while not live or live[-1][1] != "incident.closed":
            message = ws.receive_json()
            if message["type"] == "event":
                live.append((message["event"]["seq"], message["event"]["type"]))
        assert [seq for seq, _ in live] == list(range(last_seq + 1, last_seq + 1 + len(live)))
    print(f"websocket resume: incident {incident_id} from seq {since}, {len(seqs)} replayed")


def _postgresql_to_postgresql_is_the_same(source_url: str, tmp_path: Path) -> None:
    with scratch_database("postgresql", tmp_path) as second:
        report = copy_database(source_url, second)
        source, target = _engine(source_url), _engine(second)
        try:
            _assert_every_table_copied_or_skipped(source, target, report)
            _assert_same_rows(source, target, report)
        finally:
            source.dispose()
            target.dispose()
    print(f"copy PostgreSQL → PostgreSQL: {report.rows:,} rows, {report.seconds:.2f} s")


def test_sqlite_to_sqlite_is_the_same_row_for_row(
    filled: tuple[str, RealisticRun], tmp_path: Path
) -> None:
    source_url, _ = filled
    target_url = f"sqlite:///{tmp_path / 'copy.db'}"
    report = copy_database(source_url, target_url)
    source, target = _engine(source_url), _engine(target_url)
    try:
        _assert_every_table_copied_or_skipped(source, target, report)
        assert _assert_same_rows(source, target, report) == report.rows > EVENTS
    finally:
        source.dispose()
        target.dispose()
    print(f"copy SQLite → SQLite: {report.rows:,} rows, {report.seconds:.2f} s")


# Refusals and failures leave the target as it was ------------------------------------------


def test_a_target_holding_rows_is_refused_and_left_as_it_was(
    filled: tuple[str, RealisticRun], pg_target: str
) -> None:
    source_url, _ = filled
    executor = make_executor(app_settings(pg_target))
    executor.db.dispose()
    target = _engine(pg_target)
    try:
        with target.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO networks (slug, name, description, created_at)"
                    " VALUES ('kenya', 'Kenya', '', now())"
                )
            )
        before = _row_counts(target, _aidmesh_tables())
        with pytest.raises(CopyRefused) as refused:
            copy_database(source_url, pg_target)
        assert "table networks" in refused.value.detail
        assert "empty database" in refused.value.detail
        assert _row_counts(target, _aidmesh_tables()) == before
        assert before["networks"] == 1
        assert sum(before.values()) == 1
    finally:
        target.dispose()


def test_a_copy_interrupted_midway_leaves_the_target_empty_and_a_rerun_succeeds(
    filled: tuple[str, RealisticRun], pg_target: str
) -> None:
    source_url, _ = filled

    def interrupt_inside_events(line: str) -> None:
        if line.startswith("  events: "):
            raise KeyboardInterrupt  # Ctrl-C in the middle of the largest table

    with pytest.raises(KeyboardInterrupt):
        copy_database(
            source_url, pg_target, batch_rows=100, say=interrupt_inside_events, progress_every_s=0
        )
    target = _engine(pg_target)
    try:
        counts = _row_counts(target, _aidmesh_tables())
        assert set(counts) == _aidmesh_tables()
        assert sum(counts.values()) == 0, counts
        report = copy_database(source_url, pg_target)
        assert sum(_row_counts(target, _aidmesh_tables()).values()) == report.rows
    finally:
        target.dispose()


def test_a_row_the_target_refuses_fails_the_whole_copy_through_the_cli(
    filled: tuple[str, RealisticRun],
    pg_target: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SQLite does not enforce VARCHAR lengths; PostgreSQL does. A claim note too long for
    PostgreSQL, in the last table copied, fails the copy after every other table went in:
    the target is left without a row."""
    source_url, _ = filled
    broken = tmp_path / "broken.db"
    with (
        sqlite3.connect(source_url.removeprefix("sqlite:///")) as src,
        sqlite3.connect(broken) as dst,
    ):
        src.backup(dst)
    with sqlite3.connect(broken) as conn:
        conn.execute(
            "UPDATE claims SET note = ? WHERE id = (SELECT max(id) FROM claims)", ["x" * 2001]
        )

    code = main(["db", "copy", "--from", f"sqlite:///{broken}", "--to", pg_target])
    out, err = capsys.readouterr()
    assert code == 1
    assert "the copy failed; the target holds no copied row" in err
    assert "events: " in out  # the tables before it were copied, then rolled back
    target = _engine(pg_target)
    try:
        assert sum(_row_counts(target, _aidmesh_tables()).values()) == 0
    finally:
        target.dispose()


def test_a_source_behind_the_newest_schema_is_refused_with_the_fix(tmp_path: Path) -> None:
    source_url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(source_url)
    try:
        with engine.connect() as conn:
            cfg = alembic_config(source_url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0002")
            conn.commit()
    finally:
        engine.dispose()
    target_url = f"sqlite:///{tmp_path / 'new.db'}"
    with pytest.raises(CopyRefused) as refused:
        copy_database(source_url, target_url)
    assert "revision 0002" in refused.value.detail
    assert "aidmesh migrate" in refused.value.detail
    assert not (tmp_path / "new.db").exists()


def test_the_cli_refuses_a_missing_source_and_the_same_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nowhere = f"sqlite:///{tmp_path / 'nowhere.db'}"
    assert main(["db", "copy", "--from", nowhere, "--to", f"sqlite:///{tmp_path / 'b.db'}"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "nowhere.db").exists()
    assert not (tmp_path / "b.db").exists()
    same = f"sqlite:///{tmp_path / 'a.db'}"
    assert main(["db", "copy", "--from", same, "--to", same]) == 1
    assert "the same database" in capsys.readouterr().err


def test_the_checksum_ignores_row_order_and_zones_but_not_a_changed_value() -> None:
    """What --verify compares: SQLite and PostgreSQL may return rows in another order,
    and a time with or without its UTC zone; any other difference must show."""
    from service.persistence.copy import _Checksum

    at = datetime(2026, 2, 12, 8, 0, tzinfo=UTC)
    rows = [
        (1, "flood", at, {"ring": 0, "cities": [2, 3]}, True, 36.8172),
        (2, "x", None, {}, 0, 0.5),
    ]

    def digest(table: list[tuple[Any, ...]]) -> tuple[int, str]:
        checksum = _Checksum()
        checksum.add(table)
        return checksum.rows, checksum.hexdigest()

    same = digest(rows)
    assert digest(rows[::-1]) == same
    assert (
        digest(
            [
                (1, "flood", at.replace(tzinfo=None), {"cities": [2, 3], "ring": 0}, True, 36.8172),
                rows[1],
            ]
        )
        == same
    )
    changed = [
        (1, "flood", at, {"ring": 1, "cities": [2, 3]}, True, 36.8172),
        (1, "flood", at.replace(microsecond=1), {"ring": 0, "cities": [2, 3]}, True, 36.8172),
        (1, "flood", at, {"ring": 0, "cities": [2, 3]}, False, 36.8172),
        (1, "flood", at, {"ring": 0, "cities": [2, 3]}, True, 36.8173),
        (1, "Flood", at, {"ring": 0, "cities": [2, 3]}, True, 36.8172),
    ]
    for row in changed:
        assert digest([row, rows[1]]) != same, row
    assert digest(rows[:1])[0] == 1
