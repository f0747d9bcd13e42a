"""note idempotency: a note added with an Idempotency-Key is added once

Revision ID: 0021
Revises: 0020
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notes") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("body_fingerprint", sa.String(length=64), nullable=True))
        batch.create_unique_constraint("uq_note_idempotency", ["city_id", "idempotency_key"])


def downgrade() -> None:
    with op.batch_alter_table("notes") as batch:
        batch.drop_constraint("uq_note_idempotency", type_="unique")
        batch.drop_column("body_fingerprint")
        batch.drop_column("idempotency_key")
