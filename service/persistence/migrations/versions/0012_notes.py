"""notes: the human thread of each request and claim

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.persistence.columns

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = service.persistence.columns.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("claim_id", sa.Integer(), nullable=True),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("author_role", sa.String(length=16), nullable=False),
        sa.Column("author_token_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.String(length=2000), nullable=False),
        sa.Column("created_at", _UTC(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["aid_requests.id"]),
        sa.ForeignKeyConstraint(["claim_id"], ["claims.id"]),
        sa.ForeignKeyConstraint(["city_id"], ["cities.id"]),
        sa.ForeignKeyConstraint(["author_token_id"], ["api_tokens.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notes_request_id", "notes", ["request_id", "id"])
    op.create_index("ix_notes_claim_id", "notes", ["claim_id"])


def downgrade() -> None:
    op.drop_index("ix_notes_claim_id", table_name="notes")
    op.drop_index("ix_notes_request_id", table_name="notes")
    op.drop_table("notes")
