"""claims.reminded_at for acceptance reminders; city_playbooks for cities' own playbooks

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.persistence.columns

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = service.persistence.columns.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("claims") as batch_op:
        batch_op.add_column(sa.Column("reminded_at", _UTC(), nullable=True))
    with op.batch_alter_table("aid_requests") as batch_op:
        batch_op.create_index("ix_aid_requests_needed_by", ["status", "needed_by"])
    op.create_table(
        "city_playbooks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("incident_type", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=200_000), nullable=False),
        sa.Column("created_at", _UTC(), nullable=False),
        sa.Column("updated_at", _UTC(), nullable=False),
        sa.ForeignKeyConstraint(["city_id"], ["cities.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("city_id", "incident_type", name="uq_city_playbook"),
    )
    op.create_index("ix_city_playbooks_city_id", "city_playbooks", ["city_id"])


def downgrade() -> None:
    op.drop_index("ix_city_playbooks_city_id", table_name="city_playbooks")
    op.drop_table("city_playbooks")
    with op.batch_alter_table("aid_requests") as batch_op:
        batch_op.drop_index("ix_aid_requests_needed_by")
    with op.batch_alter_table("claims") as batch_op:
        batch_op.drop_column("reminded_at")
