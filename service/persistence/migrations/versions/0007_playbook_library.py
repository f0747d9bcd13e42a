"""playbook_versions: the playbook library; the lineage of cities' playbooks; the version an
incident was declared with

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.persistence.columns

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = service.persistence.columns.UTCDateTime

# Published versions are immutable. SQLite guards UPDATE only: its tests empty tables with
# DELETE, where PostgreSQL's TRUNCATE fires no row trigger, so PostgreSQL guards DELETE too.
_SQLITE_GUARD = """
CREATE TRIGGER playbook_versions_immutable BEFORE UPDATE ON playbook_versions
BEGIN SELECT RAISE(ABORT, 'published playbook versions are immutable'); END
"""
_PG_GUARD = [
    """
    CREATE FUNCTION playbook_versions_immutable() RETURNS trigger AS $$
    BEGIN RAISE EXCEPTION 'published playbook versions are immutable'; END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER playbook_versions_immutable BEFORE UPDATE OR DELETE ON playbook_versions
    FOR EACH ROW EXECUTE FUNCTION playbook_versions_immutable()
    """,
]

# Columns referring to playbook_versions, added to tables that other tables refer to: SQLite
# adds them in place (a batch copy would drop `incidents` under its foreign keys).
_REFERENCES = [
    ("incidents", "playbook_version_id"),
    ("city_playbooks", "based_on_version_id"),
    ("city_playbooks", "ignored_version_id"),
]


def upgrade() -> None:
    op.create_table(
        "playbook_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("incident_type", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=200_000), nullable=False),
        sa.Column("change_note", sa.String(length=2000), nullable=False),
        sa.Column("parent_version_id", sa.Integer(), nullable=True),
        sa.Column("published_by_token_id", sa.Integer(), nullable=True),
        sa.Column("published_at", _UTC(), nullable=False),
        sa.CheckConstraint("version >= 1", name="ck_playbook_version"),
        sa.ForeignKeyConstraint(["city_id"], ["cities.id"]),
        sa.ForeignKeyConstraint(["parent_version_id"], ["playbook_versions.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("city_id", "incident_type", "version", name="uq_playbook_version"),
    )
    op.create_index("ix_playbook_versions_type", "playbook_versions", ["incident_type", "city_id"])
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, column in _REFERENCES:
        if sqlite:
            op.execute(
                f"ALTER TABLE {table} ADD COLUMN {column} INTEGER REFERENCES playbook_versions (id)"
            )
        else:
            op.add_column(table, sa.Column(column, sa.Integer(), nullable=True))
            op.create_foreign_key(
                f"fk_{table}_{column}", table, "playbook_versions", [column], ["id"]
            )
    op.add_column("city_playbooks", sa.Column("lineage", sa.String(length=16), nullable=True))
    op.create_index("ix_incidents_playbook_version_id", "incidents", ["playbook_version_id"])
    for statement in [_SQLITE_GUARD] if sqlite else _PG_GUARD:
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.execute(
        "DROP TRIGGER playbook_versions_immutable" + ("" if sqlite else " ON playbook_versions")
    )
    if not sqlite:
        op.execute("DROP FUNCTION playbook_versions_immutable()")
    op.drop_index("ix_incidents_playbook_version_id", table_name="incidents")
    op.drop_column("city_playbooks", "lineage")
    for table, column in reversed(_REFERENCES):
        if not sqlite:
            op.drop_constraint(f"fk_{table}_{column}", table, type_="foreignkey")
        op.drop_column(table, column)
    op.drop_index("ix_playbook_versions_type", table_name="playbook_versions")
    op.drop_table("playbook_versions")
