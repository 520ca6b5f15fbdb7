"""The deals of a contact, by index: a contact's webhook looks its deals up (the web receiver,
connector.web.webhooks._incoming) and the daily purge looks for contacts no deal links
(connector.store.orphans); by the primary key (tenant, deal, contact) either read every link of
the tenant.

Revision ID: 0015_deal_contacts_by_contact
Revises: 0014_task_rotations
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015_deal_contacts_by_contact"
down_revision: str | Sequence[str] | None = "0014_task_rotations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_deal_contacts_contact", "deal_contacts", ["tenant_id", "contact_id"])


def downgrade() -> None:
    op.drop_index("ix_deal_contacts_contact", table_name="deal_contacts")
