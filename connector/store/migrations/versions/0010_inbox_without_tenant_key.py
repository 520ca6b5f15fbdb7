"""The inbox without its foreign key to `tenants` and without its index on the tenant alone.

The webhook receiver inserts ten inbox rows a delivery. The foreign key's check on each row is
a query with a row lock (KEY SHARE) on the tenant's row, which every concurrent insert of that
tenant shares (a MultiXact once two transactions hold it): about 5 µs of PostgreSQL's time per
row, a sixth of its work per delivery. `ix_inbox_tenant_id` repeats the leading column of
`uq_inbox_tenant_dedupe`, which serves every look-up by tenant.

What the key did and what does it now: a tenant's inbox rows went with the tenant (ON DELETE
CASCADE). Nothing in Deal Radar deletes tenants (they are marked `uninstalled`); one deleted by
hand leaves its inbox rows behind, and the hourly purge (jobs.purge) deletes the rows of tenants
that no longer exist, as it deletes processed events, in short batches. Until then nothing
works on them: the sweeper reads inbox rows joined to their (active) tenant, and the receiver
finds deliveries' tenants through `tenants`, so a deleted tenant's webhooks are answered as an
unknown account's once its cached id expires (a minute).

Revision ID: 0010_inbox_without_tenant_key
Revises: 0009_salesforce
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010_inbox_without_tenant_key"
down_revision: str | Sequence[str] | None = "0009_salesforce"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbox") as batch:  # SQLite rebuilds the table
        batch.drop_constraint("fk_inbox_tenant_id_tenants", type_="foreignkey")
        batch.drop_index("ix_inbox_tenant_id")


def downgrade() -> None:
    # Rows of deleted tenants would refuse the key: delete them first, as the purge would.
    op.execute("DELETE FROM inbox WHERE tenant_id NOT IN (SELECT id FROM tenants)")
    with op.batch_alter_table("inbox") as batch:
        batch.create_index("ix_inbox_tenant_id", ["tenant_id"], unique=False)
        batch.create_foreign_key(
            "fk_inbox_tenant_id_tenants", "tenants", ["tenant_id"], ["id"], ondelete="CASCADE"
        )
