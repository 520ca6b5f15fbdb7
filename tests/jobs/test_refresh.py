"""The refresh pipeline end to end: CRM -> snapshot -> engine -> episodes -> write-back."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from redis import Redis
from sqlalchemy import select

from adapters.folder.client import FolderClient
from connector import queues
from connector.intake import accept_event
from connector.store import tenants
from connector.store.models import (
    AlertEpisode,
    Evaluation,
    HealthPoint,
    InboxEvent,
    OutboxEffect,
    WrittenValues,
)
from engine.model import dump_bundle
from jobs import refresh, writeback
from jobs.runtime import Runtime
from tests.jobs.conftest import run_jobs, wait_scheduled

DEALS = ["d-1001", "d-1002", "d-1003", "d-1004", "d-1005"]


def test_a_refresh_writes_alerts_and_health_back_into_the_crm(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient
) -> None:
    queues.request_refresh(redis, tenant_id, DEALS, window=0)
    run_jobs(redis)

    assert len(crm.calls("pull")) == 1
    assert len(crm.calls("write")) == 1
    globex = crm.written("d-1002")
    assert "no_activity" in globex["alerts"] and "close_date_passed" in globex["alerts"]
    assert globex["alert_count"] == 7
    assert globex["summary"].startswith("No activity for 23 days (threshold 10) · No meeting")
    assert len(globex["summary"]) == 255, "cut to the shortest CRM text field"
    assert globex["health_grade"] == "poor"
    assert globex["days_since_interaction"] == 23
    assert crm.written("d-1005")["alerts"] == [], "a won deal carries no alerts"
    with rt.store.tenant(tenant_id) as s:
        assert {e.deal_id for e in s.scalars(select(Evaluation))} == set(DEALS)
        open_codes = {
            (e.deal_id, e.code) for e in s.scalars(select(AlertEpisode)) if e.ended_at is None
        }
        assert ("d-1002", "no_activity") in open_codes
        assert all(o.status == "done" for o in s.scalars(select(OutboxEffect)))


def test_refreshing_again_with_nothing_changed_writes_nothing(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient
) -> None:
    queues.request_refresh(redis, tenant_id, DEALS, window=0)
    run_jobs(redis)
    queues.request_refresh(redis, tenant_id, DEALS, window=0)
    run_jobs(redis)
    assert len(crm.calls("pull")) == 2
    assert len(crm.calls("write")) == 1


def test_a_deal_back_to_values_it_had_before_is_written_again(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock
) -> None:
    """A rep clears Acme's amount, enters it, clears it again: the third change must reach the
    CRM's fields like the first (a key of deals and values alone matched the first's row)."""
    queues.request_refresh(redis, tenant_id, DEALS, window=0)
    run_jobs(redis)
    doc = dump_bundle(crm.pull(["d-1001"]).bundles[0])
    emptied = {**doc, "deal": {**doc["deal"], "amount": None}}
    for version, alerted in ((emptied, True), (doc, False), (emptied, True)):
        clock.now += timedelta(minutes=3)
        crm.put_deal(version)
        queues.request_refresh(redis, tenant_id, ["d-1001"], window=0)
        run_jobs(redis)
        assert ("amount_missing" in crm.written("d-1001")["alerts"]) is alerted


def test_a_refresh_while_a_flush_writes_is_not_lost(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, monkeypatch
) -> None:
    """The rep clears Acme's amount by mistake and enters it again while the flush is writing
    'amount_missing': the refresh of the fix matches what was written before, proposes
    nothing, and the flush then records its older values. They must not stay in the CRM."""
    queues.request_refresh(redis, tenant_id, DEALS, window=0)
    run_jobs(redis)
    doc = dump_bundle(crm.pull(["d-1001"]).bundles[0])
    crm.put_deal({**doc, "deal": {**doc["deal"], "amount": None}})
    refresh.refresh(tenant_id, ["d-1001"], rt)
    real_write, fixed = FolderClient.write_back, []

    def write_back(self: FolderClient, values: dict) -> object:
        taken = real_write(self, values)
        if not fixed:  # taken by the CRM, not yet recorded: the rep's fix is refreshed now
            fixed.append(True)
            self.put_deal(doc)
            refresh.refresh(tenant_id, ["d-1001"], rt)
        return taken

    monkeypatch.setattr(FolderClient, "write_back", write_back)
    run_jobs(redis)
    assert fixed and "amount_missing" not in crm.written("d-1001")["alerts"]


def test_a_flush_slower_than_its_lock_keeps_it_and_writes_once(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, monkeypatch
) -> None:
    """Thousands of deals (a sweep's, one Sell call each) outlive the flush lock's life: the
    next flush job must not write them all a second time meanwhile."""
    refresh.refresh(tenant_id, DEALS, rt)  # proposes the write-back; no worker runs it
    rt.lock_seconds = 0.3  # stands for the 90 s default
    real_write, started = FolderClient.write_back, threading.Event()

    def slow_write(self: FolderClient, values: dict) -> object:
        started.set()
        time.sleep(1.0)
        return real_write(self, values)

    monkeypatch.setattr(FolderClient, "write_back", slow_write)
    first = threading.Thread(target=writeback.flush, args=(tenant_id,))
    first.start()
    started.wait(5)
    time.sleep(0.6)  # past the lock's life
    writeback.flush(tenant_id)  # the next flush job
    first.join()
    assert len(crm.calls("write")) == 1


def test_a_pull_slower_than_its_deal_locks_keeps_them(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, monkeypatch
) -> None:
    """A pull waiting out rate limits outlives the deals' locks: a refresh of the same deal
    meanwhile must wait for it, not pull beside it and be overwritten by its older read."""
    queues.request_refresh(redis, tenant_id, DEALS, window=0)
    run_jobs(redis)
    doc = dump_bundle(crm.pull(["d-1001"]).bundles[0])
    rt.lock_seconds = 0.3
    real_pull, slow = FolderClient.pull, threading.Event()

    def pull(self: FolderClient, ids: list[str]) -> object:
        got = real_pull(self, ids)
        if not slow.is_set():
            slow.set()
            time.sleep(1.0)
        return got

    monkeypatch.setattr(FolderClient, "pull", pull)
    crm.put_deal({**doc, "deal": {**doc["deal"], "amount": None}})  # the rep clears the amount
    queues.request_refresh(redis, tenant_id, ["d-1001"], window=0)
    first = threading.Thread(target=refresh.drain, args=(tenant_id,))
    first.start()
    slow.wait(5)
    time.sleep(0.5)  # past the locks' life
    crm.put_deal(doc)  # and enters it again: its refresh comes while the first still pulls
    queues.request_refresh(redis, tenant_id, ["d-1001"], window=0)
    refresh.drain(tenant_id)
    first.join()
    run_jobs(redis)
    assert "amount_missing" not in crm.written("d-1001")["alerts"]


def test_a_deal_the_crm_refuses_to_give_fails_alone(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient
) -> None:
    """One deal of a coalesced batch the CRM refuses (InvalidRequest): the others are pulled
    and evaluated all the same (halving the batch), and the refusal names that deal."""
    (crm.root / "deals" / "d-1003.json").write_text("{not json")
    with pytest.raises(refresh.RefreshFailed, match="d-1003"):
        refresh.refresh(tenant_id, DEALS, rt)
    with rt.store.tenant(tenant_id) as s:
        evaluated = {e.deal_id for e in s.scalars(select(Evaluation))}
    assert evaluated == set(DEALS) - {"d-1003"}
    assert len(crm.calls("pull")) <= 2 * 3 + 1, "halving, not one pull per deal"


def test_an_event_stored_during_a_pull_stays_pending_whatever_the_clocks(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock, monkeypatch
) -> None:
    """A rep changes Globex while its refresh records what it read; the webhook lands on a web
    host whose clock is 5 s behind the worker's, and Redis refuses its request: the inbox alone
    carries it. The refresh must not settle it (it read the CRM before the change)."""
    down = Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.2)
    real_pull = FolderClient.pull

    def pull_then_change(self: FolderClient, deal_ids: list[str]) -> object:
        pulled = real_pull(self, deal_ids)
        clock.now += timedelta(seconds=1)
        late = accept_event(
            rt.store, down, tenant_id, dedupe_key="evt-late", source="test", body="{}",
            deal_ids=["d-1002"], now=clock() - timedelta(seconds=5), window=0,
        )  # fmt: skip
        assert late.inbox_id and not late.queued
        return pulled

    monkeypatch.setattr(FolderClient, "pull", pull_then_change)
    refresh.refresh(tenant_id, ["d-1002"], rt)
    with rt.store.tenant(tenant_id) as s:
        status = s.scalar(select(InboxEvent.status).where(InboxEvent.dedupe_key == "evt-late"))
    assert status == "pending", "left for the sweeper to ask for again"


def test_an_interaction_ends_the_episode_and_only_that_deal_is_written(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock
) -> None:
    queues.request_refresh(redis, tenant_id, DEALS, window=0)
    run_jobs(redis)
    bundle = crm.pull(["d-1002"]).bundles[0]
    doc = dump_bundle(bundle)
    doc["activities"].append(
        {"id": "a-new", "kind": "call", "at": "2026-11-25T07:30:00Z", "direction": "outbound",
         "status": "done", "contacts": ["c-10"], "cc": [], "user": "u-tom"}
    )  # fmt: skip
    crm.put_deal(doc)
    queues.request_refresh(redis, tenant_id, ["d-1002"], window=0)
    run_jobs(redis)

    writes = crm.calls("write")
    assert len(writes) == 2
    assert len(crm.calls("pull")) == 3, "two refreshes, and the test's own read"
    assert list(writes[1]["values"]) == ["d-1002"]
    assert "no_activity" not in crm.written("d-1002")["alerts"]
    assert crm.written("d-1002")["days_since_interaction"] == 0
    with rt.store.tenant(tenant_id) as s:
        ended = [
            e
            for e in s.scalars(select(AlertEpisode))
            if e.code == "no_activity" and e.deal_id == "d-1002"
        ]
        assert len(ended) == 1 and ended[0].ended_at is not None


def test_a_deal_deleted_in_the_crm_is_forgotten(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient
) -> None:
    queues.request_refresh(redis, tenant_id, DEALS, window=0)
    run_jobs(redis)
    crm.remove_deal("d-1002")
    queues.request_refresh(redis, tenant_id, ["d-1002"], window=0)
    run_jobs(redis)
    with rt.store.tenant(tenant_id) as s:
        assert s.get(Evaluation, (tenant_id, "d-1002")) is None
        episodes = [e for e in s.scalars(select(AlertEpisode)) if e.deal_id == "d-1002"]
        assert episodes and all(e.ended_at is not None for e in episodes)
        assert s.scalars(select(HealthPoint).where(HealthPoint.deal_id == "d-1002")).all() == []
        assert s.get(WrittenValues, (tenant_id, "deal", "d-1002")) is None
        assert s.scalars(select(HealthPoint)).all(), "the other deals' points stay"


def test_a_deals_health_points_are_kept_180_days(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock
) -> None:
    """One point a deal a day: kept twice the 90 days the API's history shows, then pruned as
    the deal is evaluated, so the table does not grow for good."""
    queues.request_refresh(redis, tenant_id, DEALS, window=0)
    run_jobs(redis)
    first = clock().date()
    for days in (179, 181):
        clock.now += timedelta(days=days - (clock().date() - first).days)
        queues.request_refresh(redis, tenant_id, ["d-1002"], window=0)
        run_jobs(redis)
        with rt.store.tenant(tenant_id) as s:
            kept = sorted(
                s.scalars(select(HealthPoint.day).where(HealthPoint.deal_id == "d-1002"))
            )
        assert (first in kept) == (days <= 180), f"{days} days on: {kept}"
        assert kept[-1] == clock().date()


def test_a_write_the_crm_refuses_for_its_data_ends_failed_with_the_reason_not_retried(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient
) -> None:
    crm.add_fault("write", error="invalid_request")
    queues.request_refresh(redis, tenant_id, DEALS, window=0)
    run_jobs(redis)
    assert len(crm.calls("write")) == 1, "tried once: retrying cannot cure a refusal"
    assert not queues.queue(redis, queues.WRITEBACK).scheduled_job_registry.count
    with rt.store.tenant(tenant_id) as s:
        (row,) = s.scalars(select(OutboxEffect).where(OutboxEffect.kind == "writeback"))
    assert (row.status, row.attempts) == ("failed", 1)
    assert "injected invalid_request" in row.last_error
    assert crm.written("d-1002") == {}


def test_a_write_during_an_outage_keeps_its_reason_and_is_written_when_it_ends(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient
) -> None:
    crm.add_fault("write", error="transient")
    refresh.refresh(tenant_id, DEALS, rt)
    writeback.flush(tenant_id)  # here rather than by a worker: the retry follows within seconds
    with rt.store.tenant(tenant_id) as s:
        (row,) = s.scalars(select(OutboxEffect).where(OutboxEffect.kind == "writeback"))
    assert (row.status, row.attempts) == ("pending", 1)
    assert "injected transient" in row.last_error
    run_jobs(redis)
    wait_scheduled(redis, timeout=30)
    assert len(crm.calls("write")) == 2
    assert crm.written("d-1002")["health_grade"] == "poor"
    with rt.store.tenant(tenant_id) as s:
        (row,) = s.scalars(select(OutboxEffect).where(OutboxEffect.kind == "writeback"))
    assert row.status == "done"


def test_an_outage_then_one_expired_token_does_not_suspend_the_tenant(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient
) -> None:
    """Only a run of expired tokens means a broken install; the errors of an outage before
    the first one must not count towards it."""
    for error in ("transient", "transient", "auth_expired"):
        crm.add_fault("pull", error=error)
    queues.request_refresh(redis, tenant_id, ["d-1001"], window=0)
    run_jobs(redis)
    wait_scheduled(redis, timeout=60)
    assert tenants.get_tenant(rt.store, tenant_id).status == "active"
    assert len(crm.calls("pull")) == 4
    assert crm.written("d-1001")["health_grade"] == "good"


def test_expired_tokens_that_refreshing_does_not_cure_suspend_the_tenant(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient
) -> None:
    for error in ("auth_expired", "transient", "auth_expired", "auth_expired"):
        crm.add_fault("pull", error=error)
    queues.request_refresh(redis, tenant_id, ["d-1001"], window=0)
    run_jobs(redis)
    wait_scheduled(redis, timeout=60)
    tenant = tenants.get_tenant(rt.store, tenant_id)
    assert tenant.status == "suspended"
    assert "reinstall" in tenant.status_reason
    assert len(crm.calls("pull")) == 4
