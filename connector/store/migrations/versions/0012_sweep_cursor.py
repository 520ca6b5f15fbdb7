"""Where a daily sweep has got to, so that a lost or failed chunk job resumes it.

A sweep is a chain of chunk jobs, each queueing the next. A chunk that failed or was lost
(its worker killed, Redis emptied) ended the chain, and the rest of the tenant's deals waited
for the next day. `cursor` is the last deal id whose batch is committed, `touched_at` when
the run last moved: the sweeper resumes a run that has not moved for a while from its cursor,
and a chunk run twice starts from the cursor, not from where it was queued.

Revision ID: 0012_sweep_cursor
Revises: 0011_results_fillfactor
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_sweep_cursor"
down_revision: str | Sequence[str] | None = "0011_results_fillfactor"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sweep_runs") as batch:
        batch.add_column(sa.Column("cursor", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("touched_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sweep_runs") as batch:
        batch.drop_column("touched_at")
        batch.drop_column("cursor")
