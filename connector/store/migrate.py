"""Schema migrations (Alembic), driven from code: there is no alembic.ini.

The Alembic Config is built here, and the database connection is handed to the migration
environment (connector/store/migrations/env.py) through `config.attributes["connection"]`, so a
migration runs on exactly the connection the application would open: same URL normalisation,
same SQLite pragmas, PostgreSQL's search_path from the URL's `options` honoured.

To write the next migration after changing connector/store/models.py, point `new_revision` at a
database upgraded to head, then read the generated file through and tidy it:

    python -c "from connector.store.migrate import new_revision as n; \\
        n('sqlite:///instance/dev.db', 'what changed', '0002_what_changed')"

Error policy: database errors propagate (the CLI turns them into a message); the whole upgrade
runs in one transaction on PostgreSQL, so a failed migration leaves the schema as it was.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from connector.store.db import make_engine

MIGRATIONS = Path(__file__).with_name("migrations")
PG_LOCK_ID = 0x6465616C
"""Advisory lock taken during an upgrade on PostgreSQL, so two deploys do not both migrate."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    # configparser interpolation: a literal % in the path must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision the code knows."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None, f"no migrations in {MIGRATIONS}"
    return revision


def upgrade(url: str, revision: str = "head") -> str | None:
    """Bring the database at `url` up to `revision`; returns the revision it is then at.

    Running it on an up-to-date database does nothing.
    """
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": PG_LOCK_ID})
            command.upgrade(_config(connection), revision)
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def current(url: str) -> str | None:
    """The revision the database at `url` is at; None for a database never migrated."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def new_revision(url: str, message: str, rev_id: str) -> Path:
    """Autogenerate a migration from the models' difference with the database at `url`."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            script = command.revision(
                _config(connection), message, autogenerate=True, rev_id=rev_id
            )
    finally:
        engine.dispose()
    assert script is not None and not isinstance(script, list)
    return Path(script.path)
