"""The refresh pipeline end to end: CRM -> snapshot -> engine -> episodes -> write-back."""

from __future__ import annotations

from redis import Redis
from sqlalchemy import select

from adapters.folder.client import FolderClient
from connector import queues
from connector.store.models import AlertEpisode, Evaluation, OutboxEffect
from engine.model import dump_bundle
from jobs.runtime import Runtime
from tests.jobs.conftest import run_jobs

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
