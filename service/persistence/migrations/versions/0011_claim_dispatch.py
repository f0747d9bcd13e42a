"""claim_dispatch: who is coming and when (ETA, team lead, team size, vehicle, contact) and
why a claim ended (decline, stand-down, withdrawal)

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.persistence.columns

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = service.persistence.columns.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("claims") as batch_op:
        batch_op.add_column(sa.Column("eta_at", _UTC(), nullable=True))
        batch_op.add_column(sa.Column("team_lead", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("team_size", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("vehicle", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("contact", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("end_reason", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("claims") as batch_op:
        for column in ("end_reason", "contact", "vehicle", "team_size", "team_lead", "eta_at"):
            batch_op.drop_column(column)
