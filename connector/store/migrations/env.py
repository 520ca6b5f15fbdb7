"""Alembic's environment for Deal Radar: run through connector.store.migrate, never alone.

The connection comes in `config.attributes["connection"]`, made by connector.store.db's engine,
so the migration runs exactly where the application connects (PostgreSQL's search_path given
in the URL's options included), with the same URL normalisation.
"""

from __future__ import annotations

from alembic import context

from connector.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "migrations run through connector.store.migrate (`dealradar db upgrade`), "
        "which passes the database connection; there is no alembic.ini"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
