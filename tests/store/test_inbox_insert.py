"""The webhook receiver's inbox insert through libpq (work.InboxInsert): new rows returned with
their ids, keys already there left alone, and PostgreSQL's refusals raised as psycopg's errors
with their SQLSTATE (the Intake tells a refused delivery from a database that is down by it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy import select

from connector.store import work
from connector.store.db import Store
from connector.store.models import InboxEvent
from connector.store.tenants import create_tenant
from tests.store.side_by_side import side_by_side

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def _autocommit(store: Store) -> Any:
    """A psycopg connection of the store's, detached from its pool, in autocommit mode: as the
    webhook receiver's Intake keeps one."""
    if store.dialect != "postgresql":
        pytest.skip("InboxInsert runs on a PostgreSQL connection")
    raw = store.engine.raw_connection()
    driver = raw.driver_connection
    raw.detach()
    driver.autocommit = True
    return driver


@pytest.fixture
def connection(store: Store) -> Iterator[Any]:
    driver = _autocommit(store)
    yield driver
    driver.close()


def _rows(tenant_id: str, *keys: str) -> list[work.InboxRow]:
    return work.inbox_rows(
        tenant_id, [(k, [f"deal-{k}"], json.dumps({"k": k})) for k in keys], source="test", now=NOW
    )


def test_new_rows_come_back_with_their_ids_and_known_keys_are_left_alone(
    store: Store, connection: Any
) -> None:
    tenant, _ = create_tenant(store, crm="test", account_id="a", now=NOW)
    insert = work.InboxInsert(connection)
    first = insert(_rows(tenant.id, "e1", "e2"))
    again = insert(_rows(tenant.id, "e2", "e3"))

    assert sorted((t, k) for t, k, _id in first) == [(tenant.id, "e1"), (tenant.id, "e2")]
    assert [(t, k) for t, k, _id in again] == [(tenant.id, "e3")]
    with store.tenant(tenant.id) as s:
        stored = {e.dedupe_key: e for e in s.scalars(select(InboxEvent))}
    assert {k: e.id for k, e in stored.items()} == {k: i for _t, k, i in first + again}
    assert (stored["e1"].deal_ids, stored["e1"].body, stored["e1"].status) == (
        ["deal-e1"], json.dumps({"k": "e1"}), "pending",
    )  # fmt: skip


def test_a_refused_row_raises_psycopgs_error_with_its_sqlstate(
    store: Store, connection: Any
) -> None:
    insert = work.InboxInsert(connection)
    tenant, _ = create_tenant(store, crm="test", account_id="a", now=NOW)
    with pytest.raises(psycopg.errors.StringDataRightTruncation) as refused:
        insert(_rows(tenant.id, "k" * 301))  # the key's column holds 300 characters
    assert refused.value.sqlstate == "22001"
    assert len(insert(_rows(tenant.id, "e1"))) == 1, "the connection goes on"


def test_two_inserts_of_the_same_events_at_once_never_deadlock(store: Store) -> None:
    # The same events delivered twice, in opposite orders, to two writers at once (a CRM's retry
    # racing its first attempt): each key is stored once, and neither insert fails.
    connections = [_autocommit(store), _autocommit(store)]
    tenant, _ = create_tenant(store, crm="test", account_id="a", now=NOW)
    inserts = [work.InboxInsert(c) for c in connections]

    def write(side: int, round_: int) -> int:
        keys = [f"r{round_}-e{i:03d}" for i in range(300)]
        return len(inserts[side](_rows(tenant.id, *(keys if side == 0 else reversed(keys)))))

    try:
        first, second = side_by_side(40, write)
    finally:
        for c in connections:
            c.close()
    assert [a + b for a, b in zip(first, second, strict=True)] == [300] * 40, "each key once"
