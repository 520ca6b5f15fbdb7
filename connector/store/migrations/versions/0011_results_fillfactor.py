"""Room in each page of the tables the daily sweep rewrites, so PostgreSQL updates in place.

Every day the sweep rewrites each open deal's evaluation and the facts of most open alert
episodes (their day counts move). PostgreSQL writes an updated row as a new version: on the
same page, and then without touching any index (a "HOT" update), only if that page has room.
Filled to the brim when the rows were inserted, the pages had none: each update went to the
end of the table and added an entry to every index (three on alert_episodes), and the tables
grew by a day's worth of rows every day until vacuumed. At fillfactor 50 a page keeps half its
space for its rows' next versions; the previous day's versions are pruned from the page when it
is next read, so a day's updates find the room again the next day.

PostgreSQL only: SQLite rewrites a row in place. The setting applies to pages written from now
on; an existing table's pages get the room when rewritten (VACUUM FULL or CLUSTER, at a quiet
moment: both lock the table).

Revision ID: 0011_results_fillfactor
Revises: 0010_inbox_without_tenant_key
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011_results_fillfactor"
down_revision: str | Sequence[str] | None = "0010_inbox_without_tenant_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("evaluations", "alert_episodes")
FILLFACTOR = 50


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
