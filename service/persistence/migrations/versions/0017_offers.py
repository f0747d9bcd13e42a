"""offers: peer cities' unasked offers of units to an incident, and their answers

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.persistence.columns

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = service.persistence.columns.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "offers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("package_id", sa.Integer(), nullable=True),
        sa.Column("resource", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("ready_at", _UTC(), nullable=False),
        sa.Column("note", sa.String(length=2000), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expires_at", _UTC(), nullable=False),
        sa.Column("counter_quantity", sa.Integer(), nullable=True),
        sa.Column("counter_ready_at", _UTC(), nullable=True),
        sa.Column("end_reason", sa.String(length=500), nullable=True),
        sa.Column("claim_id", sa.Integer(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("body_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("offered_by_token_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _UTC(), nullable=False),
        sa.Column("updated_at", _UTC(), nullable=False),
        sa.CheckConstraint("quantity > 0", name="ck_offer_quantity"),
        sa.CheckConstraint(
            "counter_quantity is null or counter_quantity > 0", name="ck_offer_counter_quantity"
        ),
        sa.CheckConstraint(
            "status in ('open','countered','accepted','declined','withdrawn','expired')",
            name="ck_offer_status",
        ),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.ForeignKeyConstraint(["city_id"], ["cities.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["aid_requests.id"]),
        sa.ForeignKeyConstraint(["package_id"], ["roster_packages.id"]),
        sa.ForeignKeyConstraint(["claim_id"], ["claims.id"]),
        sa.ForeignKeyConstraint(["offered_by_token_id"], ["api_tokens.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("city_id", "idempotency_key", name="uq_offer_idempotency"),
    )
    op.create_index("ix_offers_status_expires", "offers", ["status", "expires_at"])
    op.create_index("ix_offers_incident", "offers", ["incident_id", "id"])
    op.create_index("ix_offers_city_id", "offers", ["city_id"])
    op.create_index("ix_offers_request_id", "offers", ["request_id"])
    op.create_index("ix_offers_package_id", "offers", ["package_id"])


def downgrade() -> None:
    for name in (
        "ix_offers_package_id",
        "ix_offers_request_id",
        "ix_offers_city_id",
        "ix_offers_incident",
        "ix_offers_status_expires",
    ):
        op.drop_index(name, table_name="offers")
    op.drop_table("offers")
