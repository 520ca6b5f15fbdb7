"""The migrations build exactly what the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from connector.store import migrate
from connector.store.db import Store
from connector.store.models import AlertEpisode, Base, Tenant

HEAD = "0016_episode_deal_deleted"
"""The newest migration: named once here (tests/test_cli_store.py reads it too)."""

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def _differences(url: str) -> list:
    store = Store(url)
    try:
        with store.engine.connect() as connection:
            return compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        store.dispose()


def test_upgrade_creates_exactly_the_models(database_url: str) -> None:
    assert migrate.current(database_url) is None
    assert migrate.upgrade(database_url) == migrate.head() == HEAD
    assert migrate.current(database_url) == HEAD
    assert _differences(database_url) == []


def test_upgrade_twice_is_a_no_op(database_url: str) -> None:
    migrate.upgrade(database_url)
    store = Store(database_url)
    try:
        with store.global_session() as s:
            s.add(Tenant(id="A", crm="test", account_id="a", created_at=NOW, updated_at=NOW))
        assert migrate.upgrade(database_url) == migrate.head()
        with store.global_session() as s:
            assert s.get(Tenant, "A") is not None
    finally:
        store.dispose()
    assert _differences(database_url) == []


def test_the_open_episode_index_is_partial(database_url: str) -> None:
    migrate.upgrade(database_url)
    store = Store(database_url)
    try:
        indexes = {i["name"]: i for i in inspect(store.engine).get_indexes("alert_episodes")}
        assert indexes["uq_alert_episodes_open"]["unique"]
        with store.global_session() as s:
            s.add(Tenant(id="A", crm="test", account_id="a", created_at=NOW, updated_at=NOW))

        def episode(ended: datetime | None) -> AlertEpisode:
            return AlertEpisode(
                tenant_id="A", deal_id="d1", key="no_activity", code="no_activity",
                started_at=NOW, ended_at=ended, facts={},
            )  # fmt: skip

        with store.tenant("A") as s:
            s.add_all([episode(NOW), episode(NOW), episode(None)])  # closed ones may repeat
        with pytest.raises(IntegrityError), store.tenant("A") as s:
            s.add(episode(None))  # a second open one may not
    finally:
        store.dispose()


def test_migrations_run_where_the_application_connects(database_url: str) -> None:
    migrate.upgrade(database_url)
    store = Store(database_url)
    try:
        # The default schema: on PostgreSQL, the search_path the URL's options set.
        assert {"alembic_version", "tenants"} <= set(inspect(store.engine).get_table_names())
        if store.dialect == "postgresql":
            with store.engine.connect() as connection:
                schema = connection.exec_driver_sql("SELECT current_schema()").scalar()
            assert schema.startswith("test_")
    finally:
        store.dispose()


def test_the_tables_the_sweep_rewrites_keep_room_for_new_versions(database_url: str) -> None:
    """PostgreSQL: evaluations and alert episodes leave half of each page free, so the daily
    rewrite of their rows stays on the page and touches no index (migration 0010)."""
    migrate.upgrade(database_url)
    store = Store(database_url)
    try:
        if store.dialect != "postgresql":
            pytest.skip("a PostgreSQL storage parameter")
        with store.engine.connect() as connection:
            options = dict(
                connection.exec_driver_sql(
                    "SELECT relname, reloptions FROM pg_class"
                    " WHERE relname IN ('evaluations', 'alert_episodes')"
                    " AND relnamespace = current_schema()::regnamespace"
                ).all()
            )
        assert options == {"evaluations": ["fillfactor=50"], "alert_episodes": ["fillfactor=50"]}
    finally:
        store.dispose()
