"""Many events, one pull; an event during a refresh, exactly one more; failures retried or
recorded, never dropped; one tenant's work never touches another's."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from redis import Redis
from sqlalchemy import select

from adapters.folder.client import FolderClient
from connector import queues
from connector.store import tenants, work
from connector.store.models import Evaluation, InboxEvent
from jobs import refresh, sweeper
from jobs.runtime import Runtime
from tests.jobs.conftest import run_jobs, wait_scheduled


def _event(rt: Runtime, tenant_id: str, key: str, deal_ids: list[str]) -> None:
    with rt.store.tenant(tenant_id) as s:
        work.receive_many(s, tenant_id, [(key, deal_ids, "{}")], source="test", now=rt.clock())


def test_the_same_change_twenty_times_in_a_second_is_one_pull_and_one_write(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient
) -> None:
    for _ in range(20):
        _event(rt, tenant_id, "evt-1", ["d-1002"])
        queues.request_refresh(redis, tenant_id, ["d-1002"], window=0.5)
    wait_scheduled(redis)
    assert len(crm.calls("pull")) == 1
    assert len(crm.calls("write")) == 1
    with rt.store.tenant(tenant_id) as s:
        events = list(s.scalars(select(InboxEvent)))
    assert [(e.dedupe_key, e.status) for e in events] == [("evt-1", "done")]


def test_an_event_during_a_refresh_causes_exactly_one_more(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient
) -> None:
    crm.add_fault("pull", sleep=1.5)
    redis.sadd(queues.pending_key(tenant_id), "d-1002")
    first = threading.Thread(target=refresh.drain, args=(tenant_id,))  # a worker mid-refresh
    first.start()
    deadline = time.monotonic() + 10
    while not crm.calls("pull"):
        assert time.monotonic() < deadline, "the first refresh never started"
        time.sleep(0.01)
    for _ in range(10):  # ten changes while the first pull is still running
        queues.request_refresh(redis, tenant_id, ["d-1002"], window=0.2)
    assert first.is_alive(), "the ten changes arrived while the first refresh was running"
    wait_scheduled(redis)
    first.join()
    wait_scheduled(redis)
    assert len(crm.calls("pull")) == 2


def test_transient_errors_are_retried_with_backoff_and_nothing_is_lost(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient
) -> None:
    crm.add_fault("pull", error="transient")
    crm.add_fault("pull", error="rate_limited", retry_after=0.4)
    _event(rt, tenant_id, "evt-2", ["d-1001"])
    queues.request_refresh(redis, tenant_id, ["d-1001"], window=0)
    run_jobs(redis)
    assert redis.pttl(queues.backoff_key(tenant_id)) > 0, "backing off after the first failure"
    wait_scheduled(redis, timeout=30)
    assert len(crm.calls("pull")) == 3
    assert crm.written("d-1001")["health_grade"] == "good"
    with rt.store.tenant(tenant_id) as s:
        assert s.scalars(select(InboxEvent.status)).all() == ["done"]


def test_a_revoked_permission_suspends_the_tenant_and_keeps_its_events(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock
) -> None:
    crm.add_fault("pull", error="permission_denied")
    _event(rt, tenant_id, "evt-3", ["d-1001"])
    queues.request_refresh(redis, tenant_id, ["d-1001"], window=0)
    run_jobs(redis)
    tenant = tenants.get_tenant(rt.store, tenant_id)
    assert tenant.status == "suspended"
    assert "injected permission_denied" in tenant.status_reason
    clock.now += timedelta(minutes=5)
    waits = sweeper.run()
    nothing = {"deals": 0, "effects": 0, "sweeps": 0, "setups": 0}
    assert waits == nothing, "a suspended tenant's work waits"
    with rt.store.tenant(tenant_id) as s:
        assert s.scalars(select(InboxEvent.status)).all() == ["pending"]
    tenants.set_status(rt.store, tenant_id, "active", "reinstalled", clock())
    assert sweeper.run()["deals"] == 1
    run_jobs(redis)
    with rt.store.tenant(tenant_id) as s:
        assert s.scalars(select(InboxEvent.status)).all() == ["done"]


def test_invalid_data_fails_the_job_and_its_events_not_forever(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient
) -> None:
    crm.add_fault("pull", error="invalid_request")
    _event(rt, tenant_id, "evt-4", ["d-1003"])
    queues.request_refresh(redis, tenant_id, ["d-1003"], window=0)
    run_jobs(redis)
    assert queues.queue(redis, queues.REFRESH).failed_job_registry.count == 1
    with rt.store.tenant(tenant_id) as s:
        (event,) = s.scalars(select(InboxEvent))
    assert event.status == "failed" and "invalid_request" in event.last_error


def test_the_sweeper_puts_back_what_redis_lost(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock
) -> None:
    _event(rt, tenant_id, "evt-5", ["d-1004"])  # committed, but never enqueued
    assert sweeper.run() == {"deals": 0, "effects": 0, "sweeps": 0, "setups": 0}, "not stale yet"
    clock.now += timedelta(seconds=rt.stale_seconds + 1)
    assert sweeper.run()["deals"] == 1
    run_jobs(redis)
    assert len(crm.calls("pull")) == 1
    assert crm.written("d-1004")["alerts"]


def test_a_tenants_jobs_never_touch_another_tenant(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, tmp_path, clock
) -> None:
    other_folder = tmp_path / "other-crm"
    other, _ = tenants.create_tenant(
        rt.store, crm="test", account_id=str(other_folder), now=clock()
    )
    queues.request_refresh(redis, tenant_id, ["d-1001", "d-1002"], window=0)
    queues.request_refresh(redis, other.id, ["d-1001"], window=0)  # absent in the other CRM
    run_jobs(redis)
    with rt.store.tenant(other.id) as s:
        assert s.scalars(select(Evaluation)).all() == []
    with rt.store.tenant(tenant_id) as s:
        assert {e.deal_id for e in s.scalars(select(Evaluation))} == {"d-1001", "d-1002"}
    refresh.drain(other.id)  # nothing pending for it: nothing happens
    assert not (other_folder / "written").exists()


def test_a_deal_the_crm_says_is_gone_is_forgotten_and_its_events_done(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock
) -> None:
    crm.add_fault("pull", error="not_found")
    _event(rt, tenant_id, "evt-6", ["d-1003"])
    queues.request_refresh(redis, tenant_id, ["d-1003"], window=0)
    run_jobs(redis)
    with rt.store.tenant(tenant_id) as s:
        assert s.scalars(select(InboxEvent.status)).all() == ["done"]
    clock.now += timedelta(seconds=rt.stale_seconds + 1)
    assert sweeper.run()["deals"] == 0, "nothing left for the sweeper to ask again"


def test_an_event_naming_more_deals_than_one_refresh_pulls_is_settled_over_several(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock
) -> None:
    """A contact on hundreds of deals: each refresh pulls its batch; the event must end once
    they all were, not wait forever for one refresh that covers them all."""
    deals = ["d-1001", *(f"d-gone-{i}" for i in range(refresh.DRAIN_BATCH + 50))]
    _event(rt, tenant_id, "evt-7", deals)
    queues.request_refresh(redis, tenant_id, deals, window=0)
    run_jobs(redis)
    assert len(crm.calls("pull")) == 2
    with rt.store.tenant(tenant_id) as s:
        assert s.scalars(select(InboxEvent.status)).all() == ["done"]
    clock.now += timedelta(seconds=rt.stale_seconds + 1)
    assert sweeper.run()["deals"] == 0
