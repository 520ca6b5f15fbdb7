"""Zendesk Sell: the record mirror its change feed fills (mirror_records, mirror_links) and the
notices adapters leave for admins.

Revision ID: 0006_sell
Revises: 0004_sweep_open_deal_order
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_sell"
down_revision: str | Sequence[str] | None = "0004_sweep_open_deal_order"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tenant(table: str) -> list[sa.SchemaItem]:
    return [
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f(f"fk_{table}_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "mirror_records",
        *_tenant("mirror_records"),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("crm_id", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "kind", "crm_id", name=op.f("pk_mirror_records")),
    )
    op.create_table(
        "mirror_links",
        *_tenant("mirror_links"),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("deal_id", sa.String(length=64), nullable=False),
        sa.Column("crm_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "kind", "deal_id", "crm_id", name=op.f("pk_mirror_links")
        ),
    )
    op.create_index("ix_mirror_links_record", "mirror_links", ["tenant_id", "kind", "crm_id"])
    op.create_table(
        "notices",
        *_tenant("notices"),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "name", name=op.f("pk_notices")),
    )


def downgrade() -> None:
    op.drop_table("notices")
    op.drop_index("ix_mirror_links_record", table_name="mirror_links")
    op.drop_table("mirror_links")
    op.drop_table("mirror_records")
