"""Copy a whole aidmesh database into an empty one: the move from the embedded SQLite
to PostgreSQL (`aidmesh db copy --to postgresql://...`), or between any two databases
aidmesh runs on.

The target is first migrated to the newest schema. The tables to copy are found in
the source (every table the models and the migrations made, so a table added later is
copied without a change here), and copied in foreign-key order, in batches streamed
from one snapshot of the source into one transaction on the target: a copy that fails
or is interrupted leaves the target without a row. Before that transaction commits,
PostgreSQL's sequences are moved past the copied ids and each table's row count and
checksum are compared with the source's.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from alembic.runtime.migration import MigrationContext
from sqlalchemy import DateTime, Integer, MetaData, Table, insert, inspect, select, text
from sqlalchemy import column as column_clause
from sqlalchemy import table as table_clause
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.sql import TableClause
from sqlalchemy.types import TypeEngine
from sqlmodel import SQLModel

import service.persistence.tables  # noqa: F401  (registers the tables on the metadata)
from service.persistence.columns import UTCDateTime
from service.persistence.db import build_engine, migrate, newest_revision
from service.settings import Settings

log = logging.getLogger(__name__)

# Tables a copy leaves alone, and why. Every other table of the source is copied.
SKIPPED: dict[str, str] = {"alembic_version": "set by migrating the target"}
DEFAULT_BATCH_ROWS = 2_000
Say = Callable[[str], None]


class CopyRefused(Exception):
    """The copy cannot start (or its check failed); the target holds no copied row."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class TablePlan:
    """One table to copy: typed once for reading the source and once for writing the target."""

    name: str
    read: TableClause
    write: TableClause
    order_by: tuple[str, ...]


@dataclass(frozen=True)
class TableCopied:
    name: str
    rows: int
    checksum: str
    seconds: float


@dataclass(frozen=True)
class CopyReport:
    tables: list[TableCopied]
    skipped: dict[str, str]
    seconds: float
    verified: bool

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


def copy_database(
    source_url: str,
    target_url: str,
    *,
    batch_rows: int | None = None,
    verify: bool = True,
    say: Say = log.info,
    progress_every_s: float = 2.0,
) -> CopyReport:
    """Copy every table of `source_url` into the empty database at `target_url`.

    Raises `CopyRefused` (nothing written) when the source is not at the newest schema
    revision, the target already holds rows, or the check after the copy fails.
    """
    started = time.monotonic()
    source_url, target_url = _normalised(source_url), _normalised(target_url)
    _refuse_same_database(source_url, target_url)
    _refuse_missing_sqlite_file(source_url)
    source, target = _engine(source_url), _engine(target_url)
    try:
        _refuse_unless_at_head(source)
        source_meta = _reflect(source)
        names = [t.name for t in source_meta.sorted_tables if t.name not in SKIPPED]
        _refuse_unless_empty(target, names)
        say(f"copying {len(names)} tables from {_shown(source_url)} to {_shown(target_url)}")
        migrate(target)
        plans = plan_tables(source_meta, _reflect(target))
        copier = _Copier(batch_rows or DEFAULT_BATCH_ROWS, _Progress(say, progress_every_s))
        copied = copier.copy(source, target, plans, verify)
    finally:
        source.dispose()
        target.dispose()
    report = CopyReport(copied, dict(SKIPPED), time.monotonic() - started, verify)
    say(
        f"copied {len(report.tables)} tables, {_rows(report.rows)} in {report.seconds:.1f} s"
        f" ({', '.join(f'{n} skipped: {why}' for n, why in SKIPPED.items())})"
    )
    return report


# Refusals: each before anything is written ----------------------------------------------


def _refuse_same_database(source_url: str, target_url: str) -> None:
    a, b = make_url(source_url), make_url(target_url)
    if a.get_backend_name() == b.get_backend_name() == "sqlite":
        same = Path(a.database or "").resolve() == Path(b.database or "").resolve()
    else:
        same = (a.get_backend_name(), a.host, a.port or 5432, a.database) == (
            b.get_backend_name(),
            b.host,
            b.port or 5432,
            b.database,
        )
    if same:
        raise CopyRefused("the source and the target are the same database")


def _refuse_missing_sqlite_file(source_url: str) -> None:
    url = make_url(source_url)
    # Opening a missing SQLite file would create an empty one.
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        raise CopyRefused(f"the source database file {url.database} does not exist")


def _refuse_unless_at_head(source: Engine) -> None:
    head = newest_revision()
    with source.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current is None:
        raise CopyRefused(
            "the source database has no aidmesh schema: is --from (or DATABASE_URL) right?"
        )
    if current != head:
        raise CopyRefused(
            f"the source database is at schema revision {current}, not the newest ({head}): "
            "run `aidmesh migrate` with DATABASE_URL set to the source first, then copy"
        )


def _refuse_unless_empty(target: Engine, names: Sequence[str]) -> None:
    with target.connect() as conn:
        present = set(inspect(conn).get_table_names())
        holding = [(n, _count(conn, n)) for n in names if n in present]
    holding = [(n, rows) for n, rows in holding if rows]
    if holding:
        listed = ", ".join(f"{n} ({_rows(count)})" for n, count in holding)
        raise CopyRefused(
            f"the target database already holds data in table {holding[0][0]} "
            f"(all tables holding rows: {listed}); copy only into an empty database"
        )


def _count(conn: Connection, name: str) -> int:
    quoted = conn.dialect.identifier_preparer.quote(name)
    return int(conn.execute(text(f"SELECT count(*) FROM {quoted}")).scalar_one())  # noqa: S608


# Which tables, which columns, which types -----------------------------------------------


def plan_tables(source_meta: MetaData, target_meta: MetaData) -> list[TablePlan]:
    """Every table of the source but the skipped ones, parents before children."""
    plans = []
    for source_table in source_meta.sorted_tables:
        if source_table.name in SKIPPED:
            continue
        target_table = target_meta.tables.get(source_table.name)
        if target_table is None:
            raise CopyRefused(
                f"table {source_table.name} of the source is not in the target after migrating"
            )
        missing = [c.name for c in source_table.columns if c.name not in target_table.c]
        if missing:
            raise CopyRefused(
                f"columns {', '.join(missing)} of table {source_table.name} are not in the target"
            )
        plans.append(_plan(source_table, target_table))
    return plans


def _plan(source_table: Table, target_table: Table) -> TablePlan:
    names = [c.name for c in source_table.columns]
    model = SQLModel.metadata.tables.get(source_table.name)

    def typed(side: Table) -> TableClause:
        return table_clause(
            side.name, *(column_clause(n, _column_type(model, side, n)) for n in names)
        )

    keys = tuple(c.name for c in source_table.primary_key.columns) or tuple(names)
    return TablePlan(source_table.name, typed(source_table), typed(target_table), keys)


def _column_type(model: Table | None, side: Table, name: str) -> TypeEngine[Any]:
    """The model's type where the model knows the column (it converts datetimes and JSON
    alike on every backend); otherwise the type found in that database."""
    if model is not None and name in model.c:
        return model.c[name].type
    found = side.c[name].type
    # aidmesh keeps every time in UTC; SQLite stores it without a zone.
    return UTCDateTime() if isinstance(found, DateTime) else found


def _reflect(engine: Engine) -> MetaData:
    meta = MetaData()
    with engine.connect() as conn:
        meta.reflect(bind=conn)
    return meta


# The copy itself ---------------------------------------------------------------------------


class _Copier:
    def __init__(self, batch_rows: int, progress: _Progress) -> None:
        self.batch_rows = max(1, batch_rows)
        self.progress = progress

    def copy(
        self, source: Engine, target: Engine, plans: Sequence[TablePlan], verify: bool
    ) -> list[TableCopied]:
        with source.connect() as src, target.connect() as dst:
            if source.dialect.name == "postgresql":
                # One snapshot for every table, so the copy is consistent across tables.
                src.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with src.begin(), dst.begin():
                copied = [self._copy_table(src, dst, plan) for plan in plans]
                if dst.dialect.name == "postgresql":
                    _advance_sequences(dst, plans)
                if verify:
                    self._verify(dst, plans, copied)
        return copied

    def _copy_table(self, src: Connection, dst: Connection, plan: TablePlan) -> TableCopied:
        started = time.monotonic()
        total = _count(src, plan.name)
        self.progress.start(plan.name, total)
        checksum = _Checksum()
        for rows in self._batches(src, plan.read, plan.order_by):
            dst.execute(insert(plan.write), [row._asdict() for row in rows])
            checksum.add(rows)
            self.progress.advance(checksum.rows)
        seconds = time.monotonic() - started
        self.progress.say(f"{plan.name}: {_rows(checksum.rows)} ({seconds:.2f} s)")
        return TableCopied(plan.name, checksum.rows, checksum.hexdigest(), seconds)

    def _batches(
        self, conn: Connection, table: TableClause, order_by: Sequence[str]
    ) -> Iterable[Sequence[Any]]:
        # yield_per streams (a server-side cursor on PostgreSQL): memory stays one batch.
        result = conn.execute(
            select(table).order_by(*(table.c[n] for n in order_by)),
            execution_options={"yield_per": self.batch_rows},
        )
        return result.partitions()

    def _verify(
        self, dst: Connection, plans: Sequence[TablePlan], copied: Sequence[TableCopied]
    ) -> None:
        for plan, expected in zip(plans, copied, strict=True):
            checksum = _Checksum()
            for rows in self._batches(dst, plan.write, plan.order_by):
                checksum.add(rows)
            if (checksum.rows, checksum.hexdigest()) != (expected.rows, expected.checksum):
                raise CopyRefused(
                    f"table {plan.name} differs after copying ({_rows(checksum.rows)}, "
                    f"{expected.rows:,} in the source); nothing was written"
                )
        self.progress.say(f"verified: row counts and checksums of {len(plans)} tables match")


def _advance_sequences(dst: Connection, plans: Sequence[TablePlan]) -> None:
    """Rows were inserted with their ids, which does not move a sequence: set each one
    past the largest id so the next insert does not collide."""
    quote = dst.dialect.identifier_preparer.quote
    for plan in plans:
        for col in plan.write.columns:
            if not isinstance(col.type, Integer):
                continue
            owner = {"t": quote(plan.name), "c": col.name}
            sequence = dst.execute(
                text("SELECT pg_get_serial_sequence(:t, :c)"), owner
            ).scalar_one()
            if sequence is None:
                continue
            highest = f"SELECT coalesce(max({quote(col.name)}), 0) + 1 FROM {quote(plan.name)}"  # noqa: S608 (quoted names)
            dst.execute(text(f"SELECT setval(:s, ({highest}), false)"), {"s": sequence})


class _Checksum:
    """Row count and an order-independent digest of a table's rows, so both sides agree
    whatever order each database sorts them in."""

    _MOD = 1 << 128
    # Times are aware UTC on both sides (see _column_type); a naive one counts as UTC.
    _OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS

    def __init__(self) -> None:
        self.rows = 0
        self._sum = 0

    def add(self, rows: Sequence[Any]) -> None:
        total = self._sum
        for row in rows:
            line = orjson.dumps(tuple(row), default=_fallback, option=self._OPTIONS)
            total += int.from_bytes(hashlib.blake2b(line, digest_size=16).digest(), "big")
        self._sum = total % self._MOD
        self.rows += len(rows)

    def hexdigest(self) -> str:
        return f"{self._sum:032x}"


def _fallback(value: Any) -> Any:
    """What orjson does not write itself."""
    if isinstance(value, Decimal):
        return str(value.normalize())
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    raise TypeError(f"cannot checksum a {type(value).__name__}")


class _Progress:
    """A line per table, and on a large table a line every `every_s` seconds."""

    def __init__(self, say: Say, every_s: float) -> None:
        self.say = say
        self.every_s = every_s
        self._table = ""
        self._total = 0
        self._started = self._last = 0.0

    def start(self, table: str, total: int) -> None:
        self._table, self._total = table, total
        self._started = self._last = time.monotonic()

    def advance(self, done: int) -> None:
        now = time.monotonic()
        if done >= self._total or now - self._last < self.every_s:
            return
        self._last = now
        rate = done / max(now - self._started, 1e-6)
        self.say(
            f"  {self._table}: {done:,}/{self._total:,} rows "
            f"({done / self._total:.0%}), {rate:,.0f} rows/s"
        )


# Engines ------------------------------------------------------------------------------------


def _rows(count: int) -> str:
    return f"{count:,} row" + ("" if count == 1 else "s")


def _normalised(url: str) -> str:
    return Settings(database_url=url).database_url


def _engine(url: str) -> Engine:
    # No statement timeout: counting or reading a large table may take longer than a request.
    return build_engine(Settings(database_url=url, db_pool_size=2, db_statement_timeout_ms=0))


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
