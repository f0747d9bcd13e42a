"""observatory_networks, observatory_cities: the open-data observatory's settings

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.persistence.columns

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = service.persistence.columns.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "observatory_networks",
        sa.Column("network_id", sa.Integer(), nullable=False),
        sa.Column("licence", sa.String(length=64), nullable=False),
        sa.Column("publication_delay_days", sa.Integer(), nullable=False),
        sa.Column("updated_at", _UTC(), nullable=False),
        sa.CheckConstraint("publication_delay_days >= 0", name="ck_observatory_delay"),
        sa.ForeignKeyConstraint(["network_id"], ["networks.id"]),
        sa.PrimaryKeyConstraint("network_id"),
    )
    op.create_table(
        "observatory_cities",
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("opted_in", sa.Boolean(), nullable=False),
        sa.Column("updated_at", _UTC(), nullable=False),
        sa.ForeignKeyConstraint(["city_id"], ["cities.id"]),
        sa.PrimaryKeyConstraint("city_id"),
    )


def downgrade() -> None:
    op.drop_table("observatory_cities")
    op.drop_table("observatory_networks")
