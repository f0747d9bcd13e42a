"""roster_packages, package_items: cities' rosters of packages; claims.package_id;
request_passes: targeted cities' passes

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.persistence.columns

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = service.persistence.columns.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "roster_packages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("readiness_hours", sa.Integer(), nullable=False),
        sa.Column("self_sufficiency_days", sa.Integer(), nullable=False),
        sa.Column("limitations", sa.String(length=2000), nullable=False),
        sa.Column("cost_estimate", sa.Integer(), nullable=False),
        sa.Column("cost_currency", sa.String(length=3), nullable=False),
        sa.Column("contact", sa.String(length=500), nullable=False),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.Column("unavailable_until", _UTC(), nullable=True),
        sa.Column("unavailable_reason", sa.String(length=500), nullable=False),
        sa.Column("cap_percent", sa.Integer(), nullable=False),
        sa.Column("created_at", _UTC(), nullable=False),
        sa.Column("updated_at", _UTC(), nullable=False),
        sa.CheckConstraint("cap_percent >= 1 and cap_percent <= 100", name="ck_package_cap"),
        sa.CheckConstraint("readiness_hours >= 0", name="ck_package_readiness"),
        sa.CheckConstraint("self_sufficiency_days >= 0", name="ck_package_self_sufficiency"),
        sa.CheckConstraint("cost_estimate >= 0", name="ck_package_cost"),
        sa.ForeignKeyConstraint(["city_id"], ["cities.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_roster_packages_city_id", "roster_packages", ["city_id"])
    op.create_table(
        "package_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("resource", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("cap_quantity", sa.Integer(), nullable=False),
        sa.Column("committed_quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name="ck_package_item_quantity"),
        sa.CheckConstraint(
            "committed_quantity >= 0 and committed_quantity <= cap_quantity"
            " and cap_quantity <= quantity",
            name="ck_package_item_committed",
        ),
        sa.ForeignKeyConstraint(["package_id"], ["roster_packages.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("package_id", "resource", name="uq_package_item"),
    )
    op.create_index("ix_package_items_package_id", "package_items", ["package_id"])
    op.create_index("ix_package_items_resource", "package_items", ["resource", "package_id"])
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE claims ADD COLUMN package_id INTEGER REFERENCES roster_packages (id)"
        )
    else:
        op.add_column("claims", sa.Column("package_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            "fk_claims_package_id", "claims", "roster_packages", ["package_id"], ["id"]
        )
    op.create_index("ix_claims_package_id", "claims", ["package_id"])
    op.create_table(
        "request_passes",
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("ring", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("passed_by_token_id", sa.Integer(), nullable=True),
        sa.Column("passed_at", _UTC(), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["aid_requests.id"]),
        sa.ForeignKeyConstraint(["city_id"], ["cities.id"]),
        sa.ForeignKeyConstraint(["passed_by_token_id"], ["api_tokens.id"]),
        sa.PrimaryKeyConstraint("request_id", "city_id"),
    )


def downgrade() -> None:
    op.drop_table("request_passes")
    op.drop_index("ix_claims_package_id", table_name="claims")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_claims_package_id", "claims", type_="foreignkey")
    op.drop_column("claims", "package_id")
    op.drop_index("ix_package_items_resource", table_name="package_items")
    op.drop_index("ix_package_items_package_id", table_name="package_items")
    op.drop_table("package_items")
    op.drop_index("ix_roster_packages_city_id", table_name="roster_packages")
    op.drop_table("roster_packages")
