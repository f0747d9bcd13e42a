"""sitreps: numbered, immutable situation reports of an incident

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.persistence.columns

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = service.persistence.columns.UTCDateTime

# Published situation reports are immutable, guarded as playbook versions are (0007).
_SQLITE_GUARD = """
CREATE TRIGGER sitreps_immutable BEFORE UPDATE ON sitreps
BEGIN SELECT RAISE(ABORT, 'published situation reports are immutable'); END
"""
_PG_GUARD = [
    """
    CREATE FUNCTION sitreps_immutable() RETURNS trigger AS $$
    BEGIN RAISE EXCEPTION 'published situation reports are immutable'; END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER sitreps_immutable BEFORE UPDATE OR DELETE ON sitreps
    FOR EACH ROW EXECUTE FUNCTION sitreps_immutable()
    """,
]


def upgrade() -> None:
    op.create_table(
        "sitreps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("period_from", _UTC(), nullable=False),
        sa.Column("period_to", _UTC(), nullable=False),
        sa.Column("prepared_by_token_id", sa.Integer(), nullable=True),
        sa.Column("prepared_by_city_id", sa.Integer(), nullable=False),
        sa.Column("published_at", _UTC(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.CheckConstraint("number >= 1", name="ck_sitrep_number"),
        sa.CheckConstraint("period_from < period_to", name="ck_sitrep_period"),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.ForeignKeyConstraint(["prepared_by_city_id"], ["cities.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("incident_id", "number", name="uq_sitrep_number"),
    )
    op.create_index("ix_sitreps_incident_id", "sitreps", ["incident_id"])
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in [_SQLITE_GUARD] if sqlite else _PG_GUARD:
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.execute("DROP TRIGGER sitreps_immutable" + ("" if sqlite else " ON sitreps"))
    if not sqlite:
        op.execute("DROP FUNCTION sitreps_immutable()")
    op.drop_index("ix_sitreps_incident_id", table_name="sitreps")
    op.drop_table("sitreps")
