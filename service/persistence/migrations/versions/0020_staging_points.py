"""staging points: a request's report-to may carry its coordinates

Revision ID: 0020
Revises: 0019
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("aid_requests") as batch:
        batch.add_column(sa.Column("report_lat", sa.Float(), nullable=True))
        batch.add_column(sa.Column("report_lon", sa.Float(), nullable=True))
        batch.create_check_constraint(
            "ck_request_report_point",
            "(report_lat IS NULL) = (report_lon IS NULL)"
            " AND (report_lat IS NULL OR (report_lat BETWEEN -90 AND 90"
            " AND report_lon BETWEEN -180 AND 180))",
        )


def downgrade() -> None:
    with op.batch_alter_table("aid_requests") as batch:
        batch.drop_constraint("ck_request_report_point", type_="check")
        batch.drop_column("report_lon")
        batch.drop_column("report_lat")
