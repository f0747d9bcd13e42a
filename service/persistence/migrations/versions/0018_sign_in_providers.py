"""sign_in_providers: OpenID Connect providers of a city or a network, the people they
know (issuer and subject) and sign-ins on their way to a provider and back

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.persistence.columns import UTCDateTime

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_providers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("city_id", sa.Integer(), sa.ForeignKey("cities.id"), nullable=True),
        sa.Column("network_id", sa.Integer(), sa.ForeignKey("networks.id"), nullable=True),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("client_id", sa.String(length=300), nullable=False),
        sa.Column("client_secret", sa.String(length=600), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("city_id"),
        sa.UniqueConstraint("network_id"),
        sa.CheckConstraint(
            "(city_id IS NULL) <> (network_id IS NULL)", name="ck_sign_in_providers_owner"
        ),
    )
    op.create_table(
        "external_identities",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("people.id"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_sign_in_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("issuer", "subject", name="uq_external_identity"),
    )
    op.create_index("ix_external_identities_person_id", "external_identities", ["person_id"])
    op.create_table(
        "pending_sign_ins",
        sa.Column("state_hash", sa.String(length=64), primary_key=True),
        sa.Column(
            "provider_id", sa.Integer(), sa.ForeignKey("sign_in_providers.id"), nullable=False
        ),
        sa.Column("nonce", sa.String(length=100), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("next_path", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_pending_sign_ins_provider_id", "pending_sign_ins", ["provider_id"])


def downgrade() -> None:
    op.drop_index("ix_pending_sign_ins_provider_id", table_name="pending_sign_ins")
    op.drop_table("pending_sign_ins")
    op.drop_index("ix_external_identities_person_id", table_name="external_identities")
    op.drop_table("external_identities")
    op.drop_table("sign_in_providers")
