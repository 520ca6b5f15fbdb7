"""Database engines and sessions, with every query scoped to one tenant.

A session is opened for one tenant (`Store.tenant(tenant_id)`): every ORM select, update and
delete on a tenant-scoped table gets `tenant_id = :tenant` added by SQLAlchemy's
`with_loader_criteria`, and every row it inserts must carry that tenant. A session for no tenant
refuses to touch tenant-scoped tables at all, except the few cross-tenant jobs (the sweeper, the
scheduler) that open `Store.all_tenants()` on purpose and say why.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker, with_loader_criteria
from sqlalchemy.sql.elements import BindParameter

from connector.store import jsoncodec
from connector.store.models import TenantScoped

TENANT = "tenant_id"
ALL_TENANTS = "all_tenants"


class UnscopedQuery(RuntimeError):
    """A query on tenant data from a session opened for no tenant: a bug, never data to return."""


class CrossTenantWrite(RuntimeError):
    """A row for one tenant written through another tenant's session."""


def normalize_url(url: str) -> str:
    """`postgres://` and `postgresql://` (as hosts hand them out) mean psycopg 3 here."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


SQLITE_ROWS_PER_INSERT = 100
"""Rows per multi-row INSERT statement on SQLite (see make_engine)."""


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite files get WAL, foreign keys and a busy timeout."""
    url = normalize_url(url)
    parsed = make_url(url)
    kwargs.setdefault("json_serializer", jsoncodec.dumps)
    kwargs.setdefault("json_deserializer", jsoncodec.loads)
    # A statement's values stay out of its errors (and so out of logs and job tracebacks):
    # they may be sealed secrets, webhook bodies, contacts' names and emails.
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "postgresql":
        engine = create_engine(url, pool_pre_ping=True, **kwargs)
        event.listen(engine, "connect", _binary_arrays)
        return engine
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **kwargs)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # sqlite3 keeps the last 128 statements prepared on each connection. An INSERT ... RETURNING
    # of many rows is sent as pages of multi-row VALUES (SQLAlchemy's insertmanyvalues), and
    # every page of another length is another statement: at 1,000 rows a page (the default), a
    # few hundred kilobytes each, so a sweep's first day (hundreds of thousands of episodes
    # opened, a different number per batch) filled those caches with 200 MB of statements used
    # once. At 100 rows a page they stay small, and most pages are the same statement.
    kwargs.setdefault("insertmanyvalues_page_size", SQLITE_ROWS_PER_INSERT)
    engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets the web process write while a worker reads; foreign keys are off by default.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def _binary_arrays(dbapi_connection: Any, _record: Any) -> None:
    """Send Python lists (connector.store.sql's batch arrays) to PostgreSQL in binary.

    psycopg sends a list of strings in text format by default, escaping every element with a
    regular expression: 50 ms for a batch of 500 evaluations (their JSON is full of quotes),
    against 1 ms in binary. Only those arrays are bound as plain lists: JSON values reach the
    driver wrapped by SQLAlchemy's JSON type.
    """
    from psycopg.types.array import ListBinaryDumper

    dbapi_connection.adapters.register_dumper(list, ListBinaryDumper)


def _touches_tenant_data(state: ORMExecuteState) -> bool:
    return any(issubclass(m.class_, TenantScoped) for m in state.all_mappers)


@event.listens_for(Session, "do_orm_execute")
def _scope_to_tenant(state: ORMExecuteState) -> None:
    if state.is_insert:
        _inserted_rows_carry_the_tenant(state)
        return
    if not (state.is_select or state.is_update or state.is_delete):
        return
    tenant = state.session.info.get(TENANT)
    if tenant is None:
        if state.session.info.get(ALL_TENANTS) or not _touches_tenant_data(state):
            return
        raise UnscopedQuery(
            "a query on tenant data from a session with no tenant: open it with Store.tenant(id)"
        )
    if state.is_update and isinstance(state.parameters, list) and _touches_tenant_data(state):
        # SQLAlchemy's bulk UPDATE by primary key ignores loader criteria: it would reach
        # other tenants' rows. connector.store.sql.update_many adds the tenant itself.
        raise UnscopedQuery("bulk UPDATE by primary key in a tenant session: use sql.update_many")
    if state.is_update and _touches_tenant_data(state) and _sets_tenant_id(state):
        raise CrossTenantWrite(f"an UPDATE that moves rows out of tenant {tenant!r}")
    state.statement = state.statement.options(
        with_loader_criteria(
            TenantScoped, lambda cls: cls.tenant_id == tenant, include_aliases=True
        )
    )


def _inserted_rows_carry_the_tenant(state: ORMExecuteState) -> None:
    """`session.execute(insert(Model), rows)` and `insert(Model).values(...)` skip the flush,
    and so `before_flush`: their rows, given to the execute or in the statement, are checked
    here (connector.store.sql's inserts check theirs themselves)."""
    if not _touches_tenant_data(state):
        return
    tenant = state.session.info.get(TENANT)
    if tenant is None:
        if state.session.info.get(ALL_TENANTS):
            return
        raise UnscopedQuery("writing tenant data from a session with no tenant")
    rows = state.parameters if isinstance(state.parameters, list) else [state.parameters or {}]
    rows = [*rows, *_statement_rows(state.statement)]
    strangers = {row["tenant_id"] for row in rows if row.get("tenant_id", tenant) != tenant}
    if strangers:
        raise CrossTenantWrite(
            f"rows for tenants {sorted(strangers)!r} inserted in a session for {tenant!r}"
        )


def _statement_rows(statement: Any) -> list[dict[str, Any]]:
    """The rows an INSERT names itself (`.values(...)`, one row or many), by column name."""
    given = [getattr(statement, "_values", None) or {}]
    for rows in getattr(statement, "_multi_values", ()):
        given += [row for row in rows if isinstance(row, Mapping)]
    return [{getattr(c, "key", c): _bound(v) for c, v in row.items()} for row in given if row]


def _bound(value: Any) -> Any:
    return value.value if isinstance(value, BindParameter) else value


def _sets_tenant_id(state: ORMExecuteState) -> bool:
    values = getattr(state.statement, "_values", None) or {}
    return any(getattr(column, "key", column) == "tenant_id" for column in values)


@event.listens_for(Session, "before_flush")
def _inserts_carry_the_tenant(session: Session, _context: Any, _instances: Any) -> None:
    tenant = session.info.get(TENANT)
    if tenant is None:
        if session.info.get(ALL_TENANTS):
            return
        scoped = [o for o in (*session.new, *session.dirty) if isinstance(o, TenantScoped)]
        if scoped:
            raise UnscopedQuery("writing tenant data from a session with no tenant")
        return
    for obj in (*session.new, *session.dirty):
        if isinstance(obj, TenantScoped) and obj.tenant_id != tenant:
            raise CrossTenantWrite(
                f"{type(obj).__name__} for tenant {obj.tenant_id!r} "
                f"written in a session for {tenant!r}"
            )


class Store:
    """The database: an engine and the sessions opened on it."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def tenant(self, tenant_id: str) -> Iterator[Session]:
        """A session that sees and writes one tenant's rows only; commits on success."""
        with self._sessions(info={TENANT: tenant_id}) as session, session.begin():
            yield session

    @contextmanager
    def global_session(self) -> Iterator[Session]:
        """A session for the tenants table itself (lookups by CRM account); no tenant data."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def all_tenants(self, why: str) -> Iterator[Session]:
        """A session across tenants, for the sweeper and the scheduler only; `why` documents it."""
        assert why, "say why a session crosses tenants"
        with self._sessions(info={ALL_TENANTS: why}) as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
