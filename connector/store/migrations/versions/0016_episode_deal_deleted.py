"""When an episode's deal was deleted in the CRM, so that the daily purge keeps a deleted deal's
alert history for 30 days from the deletion (a restore from the recycle bin finds it again)
rather than from each episode's end. Episodes of deals deleted before this revision have none:
the purge reads their end, as it did.

Revision ID: 0016_episode_deal_deleted
Revises: 0015_deal_contacts_by_contact
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_episode_deal_deleted"
down_revision: str | Sequence[str] | None = "0015_deal_contacts_by_contact"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alert_episodes") as batch:
        batch.add_column(sa.Column("deal_deleted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alert_episodes") as batch:
        batch.drop_column("deal_deleted_at")
