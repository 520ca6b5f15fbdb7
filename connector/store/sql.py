"""Dialect-neutral upserts: INSERT ... ON CONFLICT, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from connector.store.db import CrossTenantWrite


def _insert(session: Session, model: type) -> Any:
    # The table, not the mapped class: the ORM's bulk-insert bookkeeping costs more per row than
    # the database does, and these helpers check the tenant of every row themselves.
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return module.insert(model.__table__)


def same_tenant(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    tenant = session.info.get("tenant_id")
    if tenant is not None and any(row.get("tenant_id") != tenant for row in rows):
        raise CrossTenantWrite(f"rows for another tenant written in a session for {tenant!r}")


def raw_rows(session: Session, stmt: Any) -> list[tuple[Any, ...]]:
    """Run a select on the driver's cursor and return plain tuples.

    For the few statements that read hundreds of thousands of rows of plain columns (no types to
    convert), SQLAlchemy's per-row result objects cost more than the database. The statement is
    still built and compiled by SQLAlchemy for the session's dialect; it must name its tenant.
    """
    connection = session.connection()
    compiled = stmt.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    params: Any = compiled.params
    if compiled.positional:
        params = [params[name] for name in compiled.positiontup]
    cursor = connection.connection.driver_connection.cursor()
    try:
        cursor.execute(str(compiled), params)
        return cursor.fetchall()
    finally:
        cursor.close()


def upsert(
    session: Session, model: type, rows: Sequence[dict[str, Any]], keys: Sequence[str]
) -> None:
    """Insert the rows, or update every other column of those whose `keys` exist."""
    if not rows:
        return
    same_tenant(session, rows)
    stmt = _insert(session, model)
    columns = [c for c in rows[0] if c not in keys]
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys), set_={c: stmt.excluded[c] for c in columns}
    )
    session.execute(stmt, list(rows))


def update_many(
    session: Session, model: type, rows: Sequence[dict[str, Any]], key: str = "id"
) -> None:
    """Update many rows of the session's tenant by `key`, one statement executed many times.

    Each row gives `key` and the columns to set (all rows the same columns). The tenant is part
    of the WHERE clause, so a row of another tenant is never touched whatever ids are given.
    """
    if not rows:
        return
    tenant = session.info.get("tenant_id")
    if tenant is None:
        raise RuntimeError("update_many needs a tenant session (Store.tenant)")
    table = model.__table__
    columns = [c for c in rows[0] if c != key]
    stmt = (
        table.update()
        .where(table.c.tenant_id == tenant, table.c[key] == bindparam(f"_{key}"))
        .values({c: bindparam(f"_{c}") for c in columns})
    )
    session.connection().execute(stmt, [{f"_{k}": v for k, v in row.items()} for row in rows])


def insert_new_many(
    session: Session,
    model: type,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    returning: Sequence[str] = (),
) -> Any:
    """Insert the rows whose `keys` do not exist yet, in one statement; how many were new, or
    with `returning` (column names), the new rows' values of those columns as tuples."""
    if not rows:
        return [] if returning else 0
    same_tenant(session, rows)
    table = model.__table__
    stmt = (
        _insert(session, model)
        .on_conflict_do_nothing(index_elements=list(keys))
        .returning(*([table.c[name] for name in returning] or table.primary_key.columns))
    )
    found = session.execute(stmt, list(rows)).all()
    return [tuple(row) for row in found] if returning else len(found)


def insert_new(session: Session, model: type, row: dict[str, Any], keys: Sequence[str]) -> Any:
    """Insert the row unless its `keys` exist; the new row's primary key, or None if it existed.

    The database decides, so two writers racing on one key cannot both win.
    """
    same_tenant(session, [row])
    stmt = (
        _insert(session, model)
        .values(**row)
        .on_conflict_do_nothing(index_elements=list(keys))
        .returning(*model.__table__.primary_key.columns)
    )
    found = session.execute(stmt).first()
    return None if found is None else (found[0] if len(found) == 1 else tuple(found))
