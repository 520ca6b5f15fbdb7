"""The durable record of work: the inbox of CRM events and the outbox of CRM effects.

Both are written in the same transaction as what caused them, under a unique key, so that a
duplicate is recognised by the database rather than by a read-then-write race, and the sweeper
can always find what is still pending, whatever happened to Redis or to a worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from psycopg import errors as psycopg_errors
from psycopg import pq
from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.orm import Session

from connector.store.models import InboxEvent, OutboxEffect
from connector.store.sql import in_key_order, insert_new_many, same_tenant
from connector.store.times import to_db
from engine.text import storable

InboxRow = tuple[str, str, str, str, list[str], str, datetime]
"""A new inbox row: (tenant id, dedupe key, source, body, deal ids, status, received at)."""
INBOX_COLUMNS = ("tenant_id", "dedupe_key", "source", "body", "deal_ids", "status", "received_at")


def inbox_rows(
    tenant_id: str,
    events: Sequence[tuple[str, Sequence[str], str]],
    *,
    source: str,
    now: datetime,
) -> list[InboxRow]:
    """The inbox rows of a delivery's (dedupe key, deal ids, body) events, a key repeated within
    the delivery once. An event naming no deal is kept `unresolved` (the adapter places it
    later)."""
    seen: set[str] = set()
    rows = []
    for key, deal_ids, body in events:
        if key not in seen:
            seen.add(key)
            status = "pending" if deal_ids else "unresolved"
            rows.append((tenant_id, key, source, body, list(deal_ids), status, now))
    return rows


def receive_many(
    session: Session,
    tenant_id: str,
    events: Sequence[tuple[str, Sequence[str], str]],
    *,
    source: str,
    now: datetime,
) -> dict[str, int]:
    """Record a delivery's (dedupe key, deal ids, body) events in one statement; the new ones'
    ids by key. A key already received, or repeated within the delivery, is a duplicate and is
    not recorded."""
    rows = inbox_rows(tenant_id, events, source=source, now=now)
    if not rows:
        return {}
    if session.get_bind().dialect.name == "postgresql":
        same_tenant(session, [{"tenant_id": tenant_id}])
        driver = session.connection().connection.driver_connection
        return {key: row_id for _tenant, key, row_id in insert_postgresql(driver, rows)}
    returned = insert_new_many(
        session, InboxEvent, as_dicts(rows), ("tenant_id", "dedupe_key"),
        returning=("dedupe_key", "id"),
    )  # fmt: skip
    return dict(returned)


def as_dicts(rows: Sequence[InboxRow]) -> list[dict[str, Any]]:
    """Inbox rows as column values, for SQLAlchemy's insert, in text the database can store."""
    return [
        {
            **dict(zip(INBOX_COLUMNS, row, strict=True)),
            "dedupe_key": storable(row[1]),
            "body": storable(row[3]),
            "deal_ids": [storable(d) for d in row[4]],
            "attempts": 0,
        }
        for row in rows
    ]


def _storable_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**r, "k": storable(r["k"]), "b": storable(r["b"]), "d": [storable(d) for d in r["d"]]}
        for r in records
    ]


def _document(records: list[dict[str, Any]]) -> bytes:
    """The rows as one JSON document for _INSERT_POSTGRESQL: orjson's, unless the text holds
    what PostgreSQL cannot store (rare: checked on the encoded bytes, not string by string)."""
    try:
        document = orjson.dumps(records)
    except orjson.JSONEncodeError:  # lone surrogates, which orjson refuses
        return orjson.dumps(_storable_records(records))
    if b"\\u0000" in document:
        return orjson.dumps(_storable_records(records))
    return document


_INSERT_POSTGRESQL = (
    "INSERT INTO inbox (tenant_id, dedupe_key, source, body, deal_ids, status, attempts, "
    "received_at) SELECT e.t, e.k, e.o, e.b, e.d, e.s, 0, e.r "
    "FROM json_to_recordset(%s::json) "
    "AS e(t text, k text, o text, b text, d json, s text, r timestamptz) "
    "ON CONFLICT (tenant_id, dedupe_key) DO NOTHING RETURNING tenant_id, dedupe_key, id"
)
"""The inbox insert of the webhook receiver's hot path on PostgreSQL: one short statement whose
one parameter is the rows as a JSON array of objects, whatever their number, which the driver
prepares once. Built by SQLAlchemy, the same insert costs the web worker several times the CPU
(a long VALUES list whose placeholders the driver rewrites at every call), and so do one array
per column (the driver adapts each element in Python); the JSON encoder and PostgreSQL's JSON
reader are C. json_to_recordset reads the document once (extracting each column with `->>`
from a json value reads the whole element again for every column: a quarter more of the
server's CPU per row). Every row names its tenant, and the conflict key includes it."""


def insert_postgresql(connection: Any, rows: Sequence[InboxRow]) -> list[tuple[str, str, int]]:
    """Insert `inbox_rows` (of one tenant or several) on a psycopg connection, in its current
    transaction or, on an autocommit connection, as a transaction of its own; the new rows'
    (tenant id, dedupe key, id). Keys already in the inbox are left alone."""
    document = _document(_inbox_records(rows)).decode()
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_POSTGRESQL, (document,))
        return cursor.fetchall()


def _inbox_records(rows: Sequence[InboxRow]) -> list[dict[str, Any]]:
    """The rows as the objects _INSERT_POSTGRESQL reads, in (tenant, key) order, as every
    insert of the store (sql.in_key_order): the same events delivered twice, to two writers at
    once, must not deadlock."""
    times = {r: r.isoformat() for r in {row[6] for row in rows}}  # one per delivery
    records = [
        {"t": t, "k": k, "o": o, "b": b, "d": d, "s": s, "r": times[r]}
        for t, k, o, b, d, s, r in rows
    ]
    return in_key_order(records, ("t", "k"))


class InboxInsert:
    """`insert_postgresql` on an autocommit psycopg connection kept for it (the webhook
    receiver's): the statement prepared once on the connection and run by libpq itself, the
    rows' JSON handed over as orjson wrote it. Through a psycopg cursor the same call costs the
    web worker 2.5 times the CPU (about 100 µs against 40: the cursor's query and parameter
    handling and its result rows are Python), and the receiver makes it for every group of
    deliveries. Errors are psycopg's, as a cursor would raise them."""

    NAME = b"dealradar_inbox_insert"

    def __init__(self, connection: Any) -> None:
        self.pgconn = connection.pgconn
        statement = _INSERT_POSTGRESQL.replace("%s", "$1").encode()
        _raise_unless(self.pgconn.prepare(self.NAME, statement), pq.ExecStatus.COMMAND_OK)

    def __call__(self, rows: Sequence[InboxRow]) -> list[tuple[str, str, int]]:
        result = self.pgconn.exec_prepared(self.NAME, [_document(_inbox_records(rows))])
        _raise_unless(result, pq.ExecStatus.TUPLES_OK)
        value = result.get_value
        return [
            (value(i, 0).decode(), value(i, 1).decode(), int(value(i, 2)))
            for i in range(result.ntuples)
        ]


def _raise_unless(result: Any, status: pq.ExecStatus) -> None:
    if result.status != status:
        raise psycopg_errors.error_from_result(result)


DEDUPE_WINDOW = timedelta(days=7)
"""How long a received event's key keeps refusing its duplicates: processed events older than
this are purged (jobs.purge.run), after which a redelivery would count as new."""


def purge_processed(session: Session, received_before: datetime, limit: int) -> int:
    """Delete up to `limit` of the session tenant's processed (`done`) events received before
    `received_before`, oldest first; how many. Pending, failed and unresolved events are kept."""
    return _delete_oldest(
        session, InboxEvent, InboxEvent.received_at, limit,
        InboxEvent.status == "done", InboxEvent.received_at < received_before,
    )  # fmt: skip


FINISHED = ("done", "failed")
"""Outbox statuses no worker changes again: their rows are kept a while, then purged."""


def finished_before(before: datetime) -> list[Any]:
    """Criteria of outbox rows done or failed, last due and finished before `before`: a failure
    is kept that long after it happened (for an admin to see), not after its due day. Rows
    failed before failures were stamped (done_at empty) go by their due day."""
    moment = to_db(before)
    return [
        OutboxEffect.status.in_(FINISHED),
        OutboxEffect.due_at < moment,
        or_(OutboxEffect.done_at.is_(None), OutboxEffect.done_at < moment),
    ]


def failed_at(now: datetime) -> dict[str, Any]:
    """The values that end an outbox row `failed`: stamped with when (done_at), for
    `finished_before`."""
    return {"status": "failed", "done_at": to_db(now)}


def purge_finished_effects(
    session: Session, kinds: Sequence[str], before: datetime, limit: int
) -> int:
    """Delete up to `limit` of the session tenant's finished effects of these kinds
    (`finished_before`), oldest first; how many. Only kinds whose keys guard nothing once
    finished."""
    return _delete_oldest(
        session, OutboxEffect, OutboxEffect.due_at, limit,
        *finished_before(before), OutboxEffect.kind.in_(list(kinds)),
    )  # fmt: skip


def _delete_oldest(
    session: Session, model: Any, oldest_first: Any, limit: int, *criteria: Any
) -> int:
    """Delete up to `limit` rows of `model` of the session's tenant matching `criteria`,
    ordered by `oldest_first`: one short transaction per batch for the hourly purge."""
    tenant_id = session.info.get("tenant_id")
    if tenant_id is None:
        raise RuntimeError("the purge needs a tenant session (Store.tenant)")
    oldest = (
        select(model.id)
        .where(model.tenant_id == tenant_id, *criteria)
        .order_by(oldest_first)
        .limit(limit)
    )
    ids = list(session.scalars(oldest))
    if ids:
        session.execute(delete(model).where(model.id.in_(ids)))
    return len(ids)


_TENANTS_GONE = text(
    "WITH RECURSIVE t(id) AS ("
    " SELECT min(tenant_id) FROM inbox"
    " UNION ALL"
    " SELECT (SELECT min(tenant_id) FROM inbox WHERE tenant_id > t.id) FROM t"
    " WHERE t.id IS NOT NULL"
    ") SELECT id FROM t WHERE id IS NOT NULL AND id NOT IN (SELECT id FROM tenants)"
)
"""The inbox's tenants read as a loose scan of the unique key (one probe per tenant, not a
read of every row), less those that still exist."""


def tenants_gone(session: Session) -> list[str]:
    """The tenants that have inbox rows and exist no more: the inbox has no foreign key to
    delete a deleted tenant's rows with it (migration 0010), the purge deletes them."""
    return list(session.scalars(_TENANTS_GONE))


def purge_all(session: Session, limit: int) -> int:
    """Delete up to `limit` of the session tenant's inbox events, whatever their status; how
    many. For a tenant that no longer exists."""
    if session.info.get("tenant_id") is None:
        raise RuntimeError("purge_all needs a tenant session (Store.tenant)")
    ids = list(session.scalars(select(InboxEvent.id).limit(limit)))
    if ids:
        session.execute(delete(InboxEvent).where(InboxEvent.id.in_(ids)))
    return len(ids)


def mark(session: Session, inbox_id: int, status: str, error: str | None = None) -> None:
    session.execute(
        update(InboxEvent).where(InboxEvent.id == inbox_id).values(status=status, last_error=error)
    )


def pending_events(session: Session, up_to: int) -> list[InboxEvent]:
    return list(
        session.scalars(
            select(InboxEvent)
            .where(InboxEvent.status == "pending", InboxEvent.id <= up_to)
            .order_by(InboxEvent.id)
        )
    )


def newest_pending_event(session: Session) -> int:
    """The highest id among the tenant's pending events (0 if none): read before a pull, it
    marks the events the pull answers. An event stored after it has a higher id, whatever the
    clocks of the web host that took it and the worker that pulls say."""
    newest = session.scalar(select(func.max(InboxEvent.id)).where(InboxEvent.status == "pending"))
    return int(newest or 0)


def settle_events(session: Session, refreshed: set[str], up_to: int, now: datetime) -> int:
    """Mark done the pending events up to id `up_to` (those stored before the pull began: see
    newest_pending_event) whose deals were all refreshed; an event some of whose deals were
    refreshed keeps only the others, still to refresh: an event naming more deals than one
    refresh pulls (a contact on hundreds of deals) is settled over several, rather than never,
    its deals requested again by the sweeper forever."""
    settled = 0
    for event in pending_events(session, up_to):
        remaining = [d for d in event.deal_ids if d not in refreshed]
        if not remaining:
            event.status = "done"
            event.processed_at = now
            settled += 1
        elif len(remaining) < len(event.deal_ids):
            event.deal_ids = remaining
    return settled


def propose_many(
    session: Session,
    tenant_id: str,
    effects: Sequence[tuple[str, str, dict[str, Any]]],
    now: datetime,
) -> int:
    """Add many (key, kind, payload) effects at once, each unless its key exists; how many new."""
    rows = [
        {
            "tenant_id": tenant_id,
            "key": key,
            "kind": kind,
            "payload": payload,
            "status": "pending",
            "attempts": 0,
            "created_at": now,
            "due_at": now,
        }
        for key, kind, payload in effects
    ]
    return insert_new_many(session, OutboxEffect, rows, ("tenant_id", "key"))


def pending_effects(session: Session, kind: str, due_before: datetime) -> list[OutboxEffect]:
    return list(
        session.scalars(
            select(OutboxEffect)
            .where(
                OutboxEffect.kind == kind,
                OutboxEffect.status == "pending",
                OutboxEffect.due_at <= due_before,
            )
            .order_by(OutboxEffect.id)
        )
    )


def complete(session: Session, ids: Sequence[int], now: datetime, result: Any = None) -> None:
    session.execute(
        update(OutboxEffect)
        .where(OutboxEffect.id.in_(list(ids)))
        .values(status="done", done_at=now, result=result)
    )


def record_failure(
    session: Session, ids: Sequence[int], error: str, now: datetime, *, final: bool = False
) -> None:
    """One more failed attempt at these effects, with its reason; `final`: they end `failed`
    at `now` (a refusal retrying cannot cure), else they stay pending for the retry."""
    values: dict[str, Any] = {"attempts": OutboxEffect.attempts + 1, "last_error": error}
    if final:
        values.update(failed_at(now))
    session.execute(update(OutboxEffect).where(OutboxEffect.id.in_(list(ids))).values(**values))


# --- effects sent once at most (notifications) --------------------------------------------------


def pending_of_kinds(
    session: Session, kinds: Sequence[str], due_before: datetime, limit: int
) -> list[OutboxEffect]:
    """The session tenant's pending effects of these kinds due by `due_before`, oldest first."""
    return list(
        session.scalars(
            select(OutboxEffect)
            .where(
                OutboxEffect.kind.in_(list(kinds)),
                OutboxEffect.status == "pending",
                OutboxEffect.due_at <= due_before,
            )
            .order_by(OutboxEffect.id)
            .limit(limit)
        )
    )


def claim(session: Session, effect_id: int) -> bool:
    """Take a pending effect for sending (status `sending`, one more attempt); False when
    another worker took it first. An effect left `sending` by a killed worker stays so: for a
    message, not sending it again is the safer side of at most once."""
    taken = session.execute(
        update(OutboxEffect)
        .where(OutboxEffect.id == effect_id, OutboxEffect.status == "pending")
        .values(status="sending", attempts=OutboxEffect.attempts + 1)
    )
    return taken.rowcount == 1


def settle(
    session: Session,
    effect_id: int,
    status: str,
    now: datetime,
    *,
    due_at: datetime | None = None,
    error: str | None = None,
    result: Any = None,
) -> None:
    """Record how a claimed effect went: `done` or `failed` (finished at `now`), or `pending`
    again at `due_at`.

    Put back `pending` only while still claimed: an uninstall meanwhile failed it
    (tenants.uninstall_tenant), and a retry would send it after the customer left."""
    values: dict[str, Any] = {"status": status, "last_error": error}
    if status == "done":
        values.update(done_at=now, result=result)
    elif status == "failed":
        values.update(failed_at(now))
    if due_at is not None:
        values["due_at"] = due_at
    claimed = [OutboxEffect.status == "sending"] if status == "pending" else []
    session.execute(
        update(OutboxEffect).where(OutboxEffect.id == effect_id, *claimed).values(**values)
    )


def next_due(session: Session, kinds: Sequence[str]) -> datetime | None:
    """When the session tenant's earliest pending effect of these kinds is due."""
    return session.scalar(
        select(func.min(OutboxEffect.due_at)).where(
            OutboxEffect.kind.in_(list(kinds)), OutboxEffect.status == "pending"
        )
    )
