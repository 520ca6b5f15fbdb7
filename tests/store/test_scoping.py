"""Every query is scoped by tenant: tenant A's rows are invisible to tenant B's sessions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, func, insert, select, update

from connector.store.db import CrossTenantWrite, Store, UnscopedQuery
from connector.store.models import Base, DealRow, Tenant, TenantScoped
from connector.store.sql import update_many

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def _tenants(store: Store, *ids: str) -> None:
    with store.global_session() as s:
        for t in ids:
            s.add(Tenant(id=t, crm="test", account_id=f"acct-{t}", created_at=NOW, updated_at=NOW))


def _deal(tenant: str, crm_id: str, stage: str = "s1") -> DealRow:
    return DealRow(
        tenant_id=tenant, crm_id=crm_id, pipeline="p", stage=stage, status="open",
        data={"owner": tenant}, synced_at=NOW,
    )  # fmt: skip


def test_every_table_but_tenants_carries_the_tenant() -> None:
    for table in Base.metadata.sorted_tables:
        if table.name == "tenants":
            continue
        column = table.columns.get("tenant_id")
        assert column is not None and not column.nullable, table.name
        # The inbox alone has no key to tenants (migration 0010: the purge deletes its rows).
        keys = [] if table.name == "inbox" else ["tenants"]
        assert [fk.column.table.name for fk in column.foreign_keys] == keys, table.name
    mapped = {
        m.class_.__tablename__ for m in Base.registry.mappers if issubclass(m.class_, TenantScoped)
    }
    assert mapped == {t.name for t in Base.metadata.sorted_tables} - {"tenants"}


def test_a_tenant_sees_and_changes_only_its_own_rows(store: Store) -> None:
    _tenants(store, "A", "B")
    with store.tenant("A") as s:
        s.add_all([_deal("A", "d1"), _deal("A", "d2")])
    with store.tenant("B") as s:
        s.add(_deal("B", "d1"))  # the same CRM id in another account
    with store.tenant("B") as s:
        assert s.scalar(select(func.count()).select_from(DealRow)) == 1
        assert [d.data for d in s.scalars(select(DealRow))] == [{"owner": "B"}]
        assert s.get(DealRow, ("A", "d2")) is None
        s.execute(update(DealRow).values(stage="s9"))
        s.execute(delete(DealRow).where(DealRow.crm_id == "d2"))
    with store.tenant("A") as s:
        assert sorted((d.crm_id, d.stage) for d in s.scalars(select(DealRow))) == [
            ("d1", "s1"),
            ("d2", "s1"),
        ]


def test_queries_without_a_tenant_are_refused(store: Store) -> None:
    _tenants(store, "A")
    with pytest.raises(UnscopedQuery), store.global_session() as s:
        s.scalars(select(DealRow)).all()
    with pytest.raises(UnscopedQuery), store.global_session() as s:
        s.add(_deal("A", "d1"))
    with store.global_session() as s:
        assert s.scalars(select(Tenant.id)).all() == ["A"]


def test_writing_another_tenants_row_is_refused(store: Store) -> None:
    _tenants(store, "A", "B")
    with pytest.raises(CrossTenantWrite), store.tenant("A") as s:
        s.add(_deal("B", "d1"))
    with store.tenant("B") as s:
        assert s.scalars(select(DealRow)).all() == []


def test_a_bulk_insert_or_an_update_cannot_write_into_another_tenant(store: Store) -> None:
    """`session.execute(insert(...), rows)` skips the flush the other check runs in, and an
    UPDATE's criterion scopes the rows it changes, not the tenant it gives them."""
    _tenants(store, "A", "B")
    row = {"crm_id": "d1", "pipeline": "p", "stage": "s1", "status": "open", "data": {},
           "synced_at": NOW}  # fmt: skip
    with pytest.raises(CrossTenantWrite), store.tenant("A") as s:
        s.execute(insert(DealRow), [{**row, "tenant_id": "A"}, {**row, "tenant_id": "B"}])
    with store.tenant("A") as s:
        s.execute(insert(DealRow), [{**row, "tenant_id": "A"}])
    with pytest.raises(CrossTenantWrite), store.tenant("A") as s:
        s.execute(update(DealRow).where(DealRow.crm_id == "d1").values(tenant_id="B"))
    with store.tenant("B") as s:
        assert s.scalars(select(DealRow)).all() == []
    with store.tenant("A") as s:
        assert [d.crm_id for d in s.scalars(select(DealRow))] == ["d1"]


def test_an_insert_carrying_its_own_values_cannot_write_into_another_tenant(store: Store) -> None:
    """`insert(Model).values(...)` (one row or many) names its rows in the statement, not in
    the execute's parameters; and a session for no tenant may not insert tenant rows at all."""
    _tenants(store, "A", "B")
    row = {"crm_id": "d1", "pipeline": "p", "stage": "s1", "status": "open", "data": {},
           "synced_at": NOW}  # fmt: skip
    with pytest.raises(CrossTenantWrite), store.tenant("A") as s:
        s.execute(insert(DealRow).values(**row, tenant_id="B"))
    with pytest.raises(CrossTenantWrite), store.tenant("A") as s:
        s.execute(insert(DealRow).values([{**row, "tenant_id": "A"}, {**row, "tenant_id": "B"}]))
    with pytest.raises(UnscopedQuery), store.global_session() as s:
        s.execute(insert(DealRow), [{**row, "tenant_id": "B"}])
    with pytest.raises(UnscopedQuery), store.global_session() as s:
        s.execute(insert(DealRow).values(**row, tenant_id="B"))
    with store.tenant("B") as s:
        assert s.scalars(select(DealRow)).all() == []
    with store.tenant("A") as s:
        s.execute(insert(DealRow).values(**row, tenant_id="A"))
        s.execute(insert(DealRow).values([{**row, "crm_id": "d2", "tenant_id": "A"}]))
    with store.tenant("A") as s:
        assert [d.crm_id for d in s.scalars(select(DealRow).order_by(DealRow.crm_id))] == [
            "d1", "d2",
        ]  # fmt: skip


def test_bulk_updates_by_primary_key_cannot_reach_another_tenant(store: Store) -> None:
    _tenants(store, "A", "B")
    for t in ("A", "B"):
        with store.tenant(t) as s:
            s.add(_deal(t, "d1"))
    # SQLAlchemy's bulk UPDATE by primary key would skip the tenant criterion: refused.
    with pytest.raises(UnscopedQuery), store.tenant("A") as s:
        s.execute(update(DealRow), [{"tenant_id": "B", "crm_id": "d1", "stage": "hacked"}])
    with store.tenant("A") as s:
        update_many(s, DealRow, [{"crm_id": "d1", "stage": "s2"}], key="crm_id")
    with store.tenant("B") as s:
        assert s.get(DealRow, ("B", "d1")).stage == "s1"
    with store.tenant("A") as s:
        assert s.get(DealRow, ("A", "d1")).stage == "s2"
