"""Whether a CRM user is still active, so that a deactivated owner's tasks go elsewhere.

A CRM keeps a departed rep's deals under their name until someone reassigns them, and
Salesforce refuses a task whose owner is inactive. `active` is what the adapter read from the
CRM's users (HubSpot's archived owners, Salesforce's User.IsActive, Sell's user status); users
already stored count as active until their next sync says otherwise.

Revision ID: 0013_user_active
Revises: 0012_sweep_cursor
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_user_active"
down_revision: str | Sequence[str] | None = "0012_sweep_cursor"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("active")
