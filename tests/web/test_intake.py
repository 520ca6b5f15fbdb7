"""Group commit: deliveries that arrive while another is written are written together, each
answered with its own events, duplicates decided once; one delivery's bad rows fail only it."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import select

from connector import queues
from connector.intake import Accepted, InboxUnavailable, Incoming, Intake
from connector.store import work
from connector.store.db import Store
from connector.store.models import InboxEvent
from connector.store.tenants import create_tenant

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


class HeldIntake(Intake):
    """An Intake whose first write waits for the test, so that deliveries queue behind it."""

    def __init__(self, store: Store, redis: Redis) -> None:
        super().__init__(store, redis, window=60.0)
        self.release = threading.Event()
        self.writing = threading.Event()
        self.writes: list[list[work.InboxRow]] = []

    def _write(self, rows: list[work.InboxRow]) -> dict[tuple[str, str], int]:
        self.writes.append(rows)
        if len(self.writes) == 1:
            self.writing.set()
            assert self.release.wait(10)
        return super()._write(rows)


def _tenant(store: Store, account: str) -> str:
    tenant, _key = create_tenant(store, crm="test", account_id=account, now=NOW)
    return tenant.id


def _only_id(store: Store, tenant_id: str) -> int:
    with store.tenant(tenant_id) as s:
        return s.scalars(select(InboxEvent.id)).one()


def _deliver(intake: Intake, answers: dict[str, Any], name: str, tenant_id: str, *keys: str):  # type: ignore[no-untyped-def]
    events = [Incoming(key, [f"deal-{key}"]) for key in keys]
    try:
        answers[name] = intake.accept(tenant_id, events, source="test", body="{}", now=NOW)
    except InboxUnavailable as exc:
        answers[name] = exc


def _behind_a_held_write(intake: HeldIntake, deliveries: dict[str, tuple[str, ...]], tenants):  # type: ignore[no-untyped-def]
    """The first delivery is held mid-write while the others queue; then all are answered."""
    answers: dict[str, Any] = {}
    names = list(deliveries)
    first = threading.Thread(
        target=_deliver, args=(intake, answers, names[0], tenants[names[0]], *deliveries[names[0]])
    )
    first.start()
    assert intake.writing.wait(10)
    others = [
        threading.Thread(target=_deliver, args=(intake, answers, n, tenants[n], *deliveries[n]))
        for n in names[1:]
    ]
    for thread in others:
        thread.start()
    deadline = time.monotonic() + 10
    while len(intake._line) < len(names):  # every delivery is waiting in line
        assert time.monotonic() < deadline
        time.sleep(0.01)
    intake.release.set()
    for thread in (first, *others):
        thread.join(10)
    return answers


def test_deliveries_queued_behind_a_write_share_one_statement_and_count_each_event_once(
    store: Store, redis: Redis
) -> None:
    tenant_a, tenant_b = _tenant(store, "a"), _tenant(store, "b")
    intake = HeldIntake(store, redis)
    deliveries = {
        "first": ("e1", "e2"),
        "again": ("e2", "e3"),  # e2 is already in the inbox: a duplicate
        "same-group": ("e3", "e4"),  # e3 arrives twice in one group: new for "again" only
        "other-tenant": ("e1",),  # the same key at another tenant is another event
    }
    tenants = {"first": tenant_a, "again": tenant_a, "same-group": tenant_a}
    tenants["other-tenant"] = tenant_b
    answers = _behind_a_held_write(intake, deliveries, tenants)

    assert len(intake.writes) == 2, "the three deliveries behind the first were one write"
    assert {(r[0], r[1]) for r in intake.writes[1]} == {
        (tenant_a, "e2"), (tenant_a, "e3"), (tenant_a, "e4"), (tenant_b, "e1"),
    }  # fmt: skip
    assert answers["first"] == Accepted(new=2, queued=True)
    assert answers["again"] == Accepted(new=1, queued=True)
    assert answers["same-group"] == Accepted(new=1, queued=True)
    assert answers["other-tenant"] == Accepted(
        new=1, queued=True, inbox_id=_only_id(store, tenant_b)
    )
    with store.tenant(tenant_a) as s:
        assert sorted(s.scalars(select(InboxEvent.dedupe_key))) == ["e1", "e2", "e3", "e4"]
    pending = redis.smembers(queues.pending_key(tenant_a))
    assert {p.decode() for p in pending} == {"deal-e1", "deal-e2", "deal-e3", "deal-e4"}


def test_a_delivery_the_database_refuses_fails_alone(store: Store, redis: Redis) -> None:
    # A key longer than the column's 300 characters (a generic sender's webhook-id can be):
    # PostgreSQL refuses the row (SQLSTATE 22001). SQLite does not check lengths. (A delivery
    # for a tenant deleted meanwhile was the example before the inbox lost its foreign key to
    # tenants, migration 0010: now it is stored, and the purge deletes it.)
    if store.dialect != "postgresql":
        pytest.skip("SQLite stores a key of any length")
    tenant_a = _tenant(store, "a")
    intake = HeldIntake(store, redis)
    deliveries = {"first": ("e1",), "too-long": ("k" * 301,), "after": ("e2",)}
    answers = _behind_a_held_write(intake, deliveries, dict.fromkeys(deliveries, tenant_a))

    assert isinstance(answers["too-long"], InboxUnavailable), "503: the sender retries"
    assert answers["after"].new == 1, "written again on its own"
    with store.tenant(tenant_a) as s:
        assert sorted(s.scalars(select(InboxEvent.dedupe_key))) == ["e1", "e2"]


def test_a_database_that_is_down_fails_the_delivery_and_the_next_one_reconnects(
    store: Store, redis: Redis
) -> None:
    if store.dialect != "postgresql":
        pytest.skip("the Intake keeps a connection of its own on PostgreSQL only")
    tenant_a = _tenant(store, "a")
    intake = Intake(store, redis)
    intake.accept(tenant_a, [Incoming("e1", ["d"])], source="test", body="{}", now=NOW)
    intake._connection.close()  # as if the server had restarted
    with pytest.raises(InboxUnavailable):
        intake.accept(tenant_a, [Incoming("e2", ["d"])], source="test", body="{}", now=NOW)
    assert (
        intake.accept(tenant_a, [Incoming("e2", ["d"])], source="test", body="{}", now=NOW).new == 1
    )
