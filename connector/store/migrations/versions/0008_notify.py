"""Outbound REST hooks: subscriptions and their deliveries.

Revision ID: 0008_notify
Revises: 0006_sell
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_notify"
down_revision: str | Sequence[str] | None = "0006_sell"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hooks",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("target_url", sa.Text(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_hooks_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hooks")),
    )  # fmt: skip
    op.create_index(op.f("ix_hooks_tenant_id"), "hooks", ["tenant_id"], unique=False)
    op.create_table(
        "hook_deliveries",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
            nullable=False,
        ),
        sa.Column("hook_id", sa.String(length=36), nullable=False),
        sa.Column("event_key", sa.String(length=300), nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("msg_id", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["hook_id"], ["hooks.id"], name=op.f("fk_hook_deliveries_hook_id_hooks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_hook_deliveries_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hook_deliveries")),
        sa.UniqueConstraint("tenant_id", "hook_id", "event_key", name="uq_hook_deliveries_event"),
    )  # fmt: skip
    op.create_index(
        "ix_hook_deliveries_status_due", "hook_deliveries", ["status", "due_at"], unique=False
    )
    op.create_index(
        op.f("ix_hook_deliveries_tenant_id"), "hook_deliveries", ["tenant_id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("hook_deliveries")
    op.drop_table("hooks")
