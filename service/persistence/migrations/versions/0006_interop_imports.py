"""interop_imports: CAP alerts and EDXL-RM messages imported, for idempotent imports

Revision ID: 0006
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.persistence.columns

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = service.persistence.columns.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "interop_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=24), nullable=False),
        sa.Column("sender", sa.String(length=200), nullable=False),
        sa.Column("identifier", sa.String(length=200), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _UTC(), nullable=False),
        sa.ForeignKeyConstraint(["city_id"], ["cities.id"]),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["aid_requests.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("format", "sender", "identifier", name="uq_interop_import"),
    )
    op.create_index("ix_interop_imports_incident_id", "interop_imports", ["incident_id"])


def downgrade() -> None:
    op.drop_index("ix_interop_imports_incident_id", table_name="interop_imports")
    op.drop_table("interop_imports")
