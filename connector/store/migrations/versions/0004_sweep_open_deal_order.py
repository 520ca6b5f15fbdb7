"""The sweep's page of open deals reads one index range, in order, whatever the statistics.

Revision ID: 0004_sweep_open_deal_order
Revises: 0003_hubspot_setup
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004_sweep_open_deal_order"
down_revision: str | Sequence[str] | None = "0003_hubspot_setup"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # (tenant, status, crm_id) serves both what (tenant, status) served and the sweep's keyset
    # page `status = 'open' AND crm_id > :after ORDER BY crm_id LIMIT n`, which it reads as one
    # ordered range. With (tenant, status) alone, a planner without statistics for `deals`
    # fetched and sorted all of a tenant's open deals for every page (76 ms a page at 100,000).
    op.create_index(
        "ix_deals_tenant_status_crm_id", "deals", ["tenant_id", "status", "crm_id"], unique=False
    )
    op.drop_index("ix_deals_tenant_status", table_name="deals")
    # Episodes: (tenant, deal) instead of the tenant alone. With an index on the tenant alone,
    # a planner that took alert_episodes for empty (analyzed before a first sweep filled it)
    # probed each deal of a batch through that index, filtering all the tenant's episodes for
    # each: the sweep turned quadratic. Every index on the table now names the deal after the
    # tenant, so a probe by deal is a probe by deal whatever the statistics.
    op.create_index(
        "ix_alert_episodes_tenant_deal", "alert_episodes", ["tenant_id", "deal_id"], unique=False
    )
    op.drop_index("ix_alert_episodes_tenant_id", table_name="alert_episodes")


def downgrade() -> None:
    op.create_index("ix_alert_episodes_tenant_id", "alert_episodes", ["tenant_id"], unique=False)
    op.drop_index("ix_alert_episodes_tenant_deal", table_name="alert_episodes")
    op.create_index("ix_deals_tenant_status", "deals", ["tenant_id", "status"], unique=False)
    op.drop_index("ix_deals_tenant_status_crm_id", table_name="deals")
