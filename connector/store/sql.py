"""Dialect-neutral batch statements: INSERT ... ON CONFLICT and lookups by many deals, on SQLite
and PostgreSQL alike, each in the shape its database runs fastest.

On PostgreSQL a batch travels as one array per column (`unnest`), not as one bind parameter per
value: a statement of a few parameters is parsed once by the driver (psycopg parses a long
statement's placeholders with a regular expression at every execution, which cost more than
the database did) and by the server, and a prepared statement's generic plan reads an array
parameter once instead of rebuilding a list of hundreds of parameters for every row it filters.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    Select,
    String,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from connector.store import jsoncodec
from connector.store.db import TENANT, CrossTenantWrite, UnscopedQuery


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _insert(session: Session, model: type) -> Any:
    # The table, not the mapped class: the ORM's bulk-insert bookkeeping costs more per row than
    # the database does, and these helpers check the tenant of every row themselves.
    module = postgresql if _postgresql(session) else sqlite
    return module.insert(model.__table__)


def _unnested(model: type, rows: Sequence[dict[str, Any]]) -> Select:
    """PostgreSQL: the rows as a SELECT over one array parameter per column (`unnest`).

    JSON values travel as text and are cast back: an array of JSON documents is encoded here
    in one pass, with the codec SQLAlchemy's JSON type is given (connector.store.db); None is
    JSON null, as there.
    """
    table = model.__table__
    names = list(rows[0])
    arrays = []
    for name in names:
        column_type = table.c[name].type
        values = [row[name] for row in rows]
        if isinstance(column_type, JSON):
            column_type, values = String(), [jsoncodec.dumps(v) for v in values]
        elif isinstance(column_type, Float):  # psycopg refuses a list mixing int and float
            values = [None if v is None else float(v) for v in values]
        arrays.append(bindparam(f"rows_{name}", values, type_=postgresql.ARRAY(column_type)))
    source = func.unnest(*arrays).table_valued(*names).render_derived(name="batch")
    return select(
        *[
            cast(source.c[n], table.c[n].type) if isinstance(table.c[n].type, JSON) else source.c[n]
            for n in names
        ]
    )


def _insert_rows(session: Session, model: type, rows: Sequence[dict[str, Any]]) -> Any:
    """INSERT of the rows, to be executed as is: PostgreSQL gets them as arrays (`_unnested`),
    SQLite as the rows to an executemany (returns the statement and its parameters)."""
    stmt = _insert(session, model)
    if _postgresql(session):
        return stmt.from_select(list(rows[0]), _unnested(model, rows)), None
    return stmt, list(rows)


def of_deals(
    session: Session, stmt: Select, deal_column: ColumnElement, deal_ids: Sequence[str]
) -> Select:
    """`stmt` (a select that names the session's tenant) limited to rows of these deals.

    SQLite: `deal_column IN (...)`. PostgreSQL: one index probe per deal, whatever the planner
    believes about the table. A plain `deal_id = ANY(...)` leaves the choice to the statistics,
    and a table filled since it was last analyzed (the first sweep of a new tenant fills
    alert_episodes, evaluations and health_points; a new tenant is missing from a big shared
    table's statistics even where autovacuum runs) looks empty: the planner then scans the
    whole tenant through the leading `tenant_id` of the index and filters the deals, at a cost
    that grows with every batch. Each wanted deal id is therefore joined LATERALly to the
    statement, so that its `deal_column = id` can only be an index condition; `OFFSET 0` keeps
    PostgreSQL from flattening the subquery into a join it could plan as a hash join over the
    tenant's rows, for the same wrong reason.
    """
    ids = list(deal_ids)
    if not _postgresql(session):
        return stmt.where(deal_column.in_(ids))
    wanted = (
        func.unnest(bindparam("deal_ids", ids, type_=postgresql.ARRAY(String())))
        .table_valued("id")
        .render_derived(name="wanted")
    )
    found = stmt.where(deal_column == wanted.c.id).offset(literal_column("0")).lateral("found")
    return select(*found.c).select_from(wanted).join(found, true())


def tenant_of(session: Session) -> str:
    """The session's tenant, for Core statements that name it themselves."""
    tenant = session.info.get(TENANT)
    if tenant is None:
        raise UnscopedQuery("a query on tenant data from a session with no tenant")
    return tenant


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


def in_key_order(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """The rows sorted by their `keys`' values. Two statements that write some of the same rows
    at once (two workers saving bundles that share contacts or owners) then take those rows'
    locks in the same order, so one waits for the other; in any other order each could hold a
    row the other needs, a deadlock that PostgreSQL breaks by failing one of them."""
    return sorted(rows, key=itemgetter(*keys))


def upsert(
    session: Session, model: type, rows: Sequence[dict[str, Any]], keys: Sequence[str]
) -> None:
    """Insert the rows, or update every other column of those whose `keys` exist.

    The rows go in `keys` order (in_key_order), whatever order they were given in."""
    if not rows:
        return
    same_tenant(session, rows)
    rows = in_key_order(rows, keys)
    stmt, params = _insert_rows(session, model, rows)
    columns = [c for c in rows[0] if c not in keys]
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys), set_={c: stmt.excluded[c] for c in columns}
    )
    session.execute(stmt, params)


def insert_returning(
    session: Session, model: type, rows: Sequence[dict[str, Any]], returning: Sequence[str]
) -> list[tuple[Any, ...]]:
    """Insert the rows; the values of the `returning` columns of each new row, in no order
    (SQLite cannot promise one, and would fall back to one statement per row if asked)."""
    if not rows:
        return []
    same_tenant(session, rows)
    table = model.__table__
    stmt, params = _insert_rows(session, model, rows)
    stmt = stmt.returning(*[table.c[name] for name in returning])
    if params is None:
        return [tuple(row) for row in session.connection().execute(stmt)]
    return [tuple(row) for row in session.connection().execute(stmt, params)]


def update_many(
    session: Session, model: type, rows: Sequence[dict[str, Any]], key: str = "id"
) -> None:
    """Update many rows of the session's tenant by `key`.

    Each row gives `key` and the columns to set (all rows the same columns). The tenant is part
    of the WHERE clause, so a row of another tenant is never touched whatever ids are given.

    SQLite: one statement executed many times. PostgreSQL: one statement for the whole batch,
    `UPDATE ... FROM` the rows as arrays (`_unnested`); executed row by row, the daily sweep's
    refresh of ongoing episodes' facts (a few hundred thousand rows) cost it a quarter of its
    time in round trips. The keys are also given as `key = ANY(array)`, so that the rows are
    found through the key's index whatever the planner believes of the table's size (a table
    filled since it was last analyzed looks empty, and a join alone was then planned as a scan
    of the whole table).
    """
    if not rows:
        return
    tenant = session.info.get("tenant_id")
    if tenant is None:
        raise RuntimeError("update_many needs a tenant session (Store.tenant)")
    table = model.__table__
    columns = [c for c in rows[0] if c != key]
    if _postgresql(session):
        batch = _unnested(model, rows).subquery("batch_rows")
        keys = bindparam(
            "update_keys", [row[key] for row in rows], type_=postgresql.ARRAY(table.c[key].type)
        )
        session.connection().execute(
            table.update()
            .where(
                table.c.tenant_id == tenant,
                table.c[key] == func.any(keys),
                table.c[key] == batch.c[key],
            )
            .values({c: batch.c[c] for c in columns})
        )
        return
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
    """Insert the rows whose `keys` do not exist yet, in one statement, in `keys` order
    (in_key_order); how many were new, or with `returning` (column names), the new rows' values
    of those columns as tuples."""
    if not rows:
        return [] if returning else 0
    same_tenant(session, rows)
    rows = in_key_order(rows, keys)
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


def increment(
    session: Session, model: type, row: dict[str, Any], keys: Sequence[str], column: str
) -> int:
    """Add one to `column` of the row with these `keys` (made at 1 when missing); the new value.

    One statement, so two writers counting at once each get their own value."""
    same_tenant(session, [row])
    table = model.__table__
    stmt = (
        _insert(session, model)
        .values(**row, **{column: 1})
        .on_conflict_do_update(index_elements=list(keys), set_={column: table.c[column] + 1})
        .returning(table.c[column])
    )
    return int(session.execute(stmt).scalar_one())
