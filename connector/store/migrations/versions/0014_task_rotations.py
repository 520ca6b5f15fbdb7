"""Task teams' round robins: how many tasks each team has been handed, per tenant.

Revision ID: 0014_task_rotations
Revises: 0013_user_active
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_task_rotations"
down_revision: str | Sequence[str] | None = "0013_user_active"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "task_rotations",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("team", sa.String(length=50), nullable=False),
        sa.Column("turns", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_task_rotations_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "team", name=op.f("pk_task_rotations")),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("task_rotations")
