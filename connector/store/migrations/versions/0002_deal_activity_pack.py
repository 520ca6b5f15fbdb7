"""Deals carry their activities packed in one column, for the sweep's reads.

Revision ID: 0002_deal_activity_pack
Revises: 0001_initial
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_deal_activity_pack"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: deals saved before get their pack at their next refresh; until then the sweep
    # reads their activities through the join.
    with op.batch_alter_table("deals") as batch:
        batch.add_column(sa.Column("activities", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        batch.drop_column("activities")
