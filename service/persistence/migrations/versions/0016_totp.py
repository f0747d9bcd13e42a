"""totp: a person's optional second factor, and a city's rule that its managers use it

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("totp_secret", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("totp_enabled", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("cities") as batch:
        batch.add_column(
            sa.Column("managers_need_totp", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("user_sessions") as batch:
        batch.add_column(
            sa.Column("enrol_only", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("user_sessions") as batch:
        batch.drop_column("enrol_only")
    with op.batch_alter_table("cities") as batch:
        batch.drop_column("managers_need_totp")
    with op.batch_alter_table("people") as batch:
        batch.drop_column("totp_last_step")
        batch.drop_column("totp_enabled")
        batch.drop_column("totp_secret")
