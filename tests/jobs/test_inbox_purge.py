"""The inbox keeps a key for the dedupe window, then the hourly purge drops processed events."""

from __future__ import annotations

from datetime import UTC, timedelta

from redis import Redis
from sqlalchemy import delete, func, select

from adapters.folder.client import FolderClient
from connector import queues
from connector.commands import cron_cmd
from connector.intake import accept_event
from connector.store import tenants, work
from connector.store.models import AlertEpisode, ContactRow, InboxEvent, OutboxEffect, Tenant
from connector.store.snapshots import delete_deals
from connector.store.tenants import create_tenant
from jobs import pipeline, purge
from jobs.crm_effects import TASK
from jobs.runtime import Runtime
from tests.jobs.conftest import Clock, run_jobs

DEALS = ["d-1001", "d-1002", "d-1003", "d-1004", "d-1005"]


def _receive(rt: Runtime, tenant_id: str, key: str) -> int | None:
    """The event's inbox id, None when the inbox refused it as a duplicate."""
    return accept_event(
        rt.store, rt.redis, tenant_id, dedupe_key=key, source="test", body="{}", deal_ids=[],
        now=rt.clock(),
    ).inbox_id  # fmt: skip


def _mark(rt: Runtime, tenant_id: str, inbox_id: int | None, status: str) -> None:
    assert inbox_id is not None
    with rt.store.tenant(tenant_id) as s:
        work.mark(s, inbox_id, status)


def _keys(rt: Runtime, tenant_id: str) -> dict[str, str]:
    with rt.store.tenant(tenant_id) as s:
        return {e.dedupe_key: e.status for e in s.scalars(select(InboxEvent))}


def test_processed_events_are_purged_after_the_dedupe_window_and_only_they(
    rt: Runtime, tenant_id: str, clock: Clock
) -> None:
    for key, status in (("done-1", "done"), ("pending-1", "pending"), ("failed-1", "failed")):
        _mark(rt, tenant_id, _receive(rt, tenant_id, key), status)

    clock.now += timedelta(days=6, hours=23)
    assert _receive(rt, tenant_id, "done-1") is None, "a duplicate within 7 days is refused"
    assert purge.run() == {"tenants": 0, "events": 0}

    clock.now += timedelta(hours=2)
    assert purge.run() == {"tenants": 1, "events": 1}
    assert _keys(rt, tenant_id) == {"pending-1": "pending", "failed-1": "failed"}
    assert _receive(rt, tenant_id, "done-1") is not None, "past the window it is new again"


def test_the_purge_works_in_batches_and_tenant_by_tenant(
    rt: Runtime, tenant_id: str, clock: Clock, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    other, _key = create_tenant(rt.store, crm="test", account_id="other", now=clock())
    for n in range(7):
        _mark(rt, tenant_id, _receive(rt, tenant_id, f"a-{n}"), "done")
        _mark(rt, other.id, _receive(rt, other.id, f"b-{n}"), "done")
    _mark(rt, other.id, _receive(rt, other.id, "b-kept"), "pending")
    monkeypatch.setattr(purge, "PURGE_BATCH", 3)  # 7 rows: batches of 3, 3 and 1
    clock.now += work.DEDUPE_WINDOW + timedelta(minutes=1)
    fresh = _receive(rt, tenant_id, "a-new")
    _mark(rt, tenant_id, fresh, "done")

    assert purge.run() == {"tenants": 2, "events": 14}
    assert _keys(rt, tenant_id) == {"a-new": "done"}, "received within the window: kept"
    assert _keys(rt, other.id) == {"b-kept": "pending"}


def test_a_deleted_tenants_events_are_purged_whatever_their_status(
    rt: Runtime, tenant_id: str, clock: Clock, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    # The inbox has no foreign key to cascade a tenant's deletion (migration 0010).
    gone, _key = create_tenant(rt.store, crm="test", account_id="gone", now=clock())
    for n in range(7):
        _receive(rt, gone.id, f"g-{n}")  # unresolved: work kept, were the tenant alive
    _mark(rt, gone.id, _receive(rt, gone.id, "g-done"), "done")
    _receive(rt, tenant_id, "kept")
    with rt.store.global_session() as s:
        s.execute(delete(Tenant).where(Tenant.id == gone.id))
    _receive(rt, gone.id, "g-late")  # a delivery in flight as it was deleted
    monkeypatch.setattr(purge, "PURGE_BATCH", 3)

    assert purge.run() == {"tenants": 0, "events": 0}, "no processed event is old enough"
    with rt.store.all_tenants("the test counts every tenant's inbox") as s:
        counts = select(InboxEvent.tenant_id, func.count()).group_by(InboxEvent.tenant_id)
        left = dict(s.execute(counts).all())
    assert left == {tenant_id: 1}
    assert _keys(rt, tenant_id) == {"kept": "unresolved"}


def test_the_cron_schedules_the_purge_hourly(redis: Redis) -> None:
    jobs = {job.func_name: job for job in cron_cmd.scheduler(redis, 60).get_jobs()}
    assert jobs["jobs.purge.run"].cron == cron_cmd.PURGE_CRON
    assert jobs["jobs.purge.run"].queue_name == "sweep"


def test_an_uninstalled_tenants_events_are_purged_whatever_their_status(
    rt: Runtime, tenant_id: str, clock: Clock
) -> None:
    """Events stored before the uninstall, pending for good (nothing works on an uninstalled
    tenant): the inbox must not keep them forever."""
    other, _ = create_tenant(rt.store, crm="test", account_id="/tmp/other", now=clock())
    for key in ("a", "b"):
        _receive(rt, tenant_id, key)
        _receive(rt, other.id, key)
    tenants.uninstall_tenant(rt.store, tenant_id, "left", clock())
    purge.run()
    assert _keys(rt, tenant_id) == {}
    assert set(_keys(rt, other.id)) == {"a", "b"}, "the others' work is kept"


def test_once_a_day_the_purge_deletes_what_a_deleted_deal_left_behind(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    queues.request_refresh(redis, tenant_id, DEALS, window=0)
    run_jobs(redis)
    with rt.store.tenant(tenant_id) as s:
        delete_deals(s, ["d-1002"])  # deleted in the CRM: its contacts c-10 and c-11 stay behind

    def contacts() -> set[str]:
        with rt.store.tenant(tenant_id) as s:
            return set(s.scalars(select(ContactRow.crm_id)))

    before = contacts()
    day = (clock.now + purge.KEEP_ORPHANS + timedelta(days=1)).astimezone(UTC).replace(minute=5)
    clock.now = day.replace(hour=(purge.ORPHANS_HOUR + 1) % 24)
    purge.run()
    assert contacts() == before, "not at every hourly run"
    clock.now = day.replace(hour=purge.ORPHANS_HOUR)
    purge.run()
    assert contacts() == before - {"c-10", "c-11"}


def test_a_new_alert_after_the_daily_purge_gets_its_own_task(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    """The newest episodes were a deleted deal's, and the daily purge deleted them: the next
    episode must not take one of their ids (SQLite hands a deleted highest id out again), or
    the outbox, which keeps `crm_task:<episode id>` so that no task is made twice, takes it
    for the old episode's task and makes none."""
    queues.request_refresh(redis, tenant_id, ["d-1002"], window=0)
    run_jobs(redis)
    crm.remove_deal("d-1002")  # deleted in the CRM: its episodes end
    queues.request_refresh(redis, tenant_id, ["d-1002"], window=0)
    run_jobs(redis)

    def episodes() -> int:
        with rt.store.tenant(tenant_id) as s:
            return s.scalar(select(func.count()).select_from(AlertEpisode)) or 0

    before = episodes()
    day = (clock.now + purge.KEEP_ORPHANS + timedelta(days=1)).astimezone(UTC)
    clock.now = day.replace(hour=purge.ORPHANS_HOUR, minute=5)
    purge.run()
    assert before > 1 and episodes() < before, "the deleted deal's episodes were purged"

    queues.request_refresh(redis, tenant_id, ["d-1003"], window=0)
    run_jobs(redis)

    with rt.store.tenant(tenant_id) as s:
        started = {e.id: e.deal_id for e in s.scalars(select(AlertEpisode))}
        made = {
            int(e.key.split(":")[1]): e.result["task_id"]
            for e in s.scalars(select(OutboxEffect).where(OutboxEffect.kind == TASK))
            if int(e.key.split(":")[1]) in started
        }
    tasks = crm.tasks()
    assert made, "the new alerts want tasks"
    assert {task: tasks[task]["deal_id"] for task in made.values()} == {
        task: "d-1003" for task in made.values()
    }, "a new episode's task was taken for the purged episode's, on the deleted deal"


def test_write_backs_and_event_batches_go_30_days_after_they_finished(
    rt: Runtime, tenant_id: str, clock: Clock
) -> None:
    """Their keys guard nothing once finished: done ones go 30 days after they were done, and
    so do failed ones after they failed (a failure kept that long for an admin to see, not
    for ever); pending ones stay."""
    kinds = {"wb-done": "done", "wb-failed": "failed", "wb-pending": "pending",
             "ev-failed-late": "failed"}  # fmt: skip
    with rt.store.tenant(tenant_id) as s:
        work.propose_many(s, tenant_id, [
            (key, pipeline.EVENT if key.startswith("ev") else pipeline.WRITEBACK, {})
            for key in kinds
        ], clock.now)  # fmt: skip
        rows = {e.key: e.id for e in s.scalars(select(OutboxEffect))}
        work.complete(s, [rows["wb-done"]], clock.now)
        work.record_failure(s, [rows["wb-failed"]], "refused", clock.now, final=True)
        work.record_failure(s, [rows["ev-failed-late"]], "refused",
                            clock.now + timedelta(days=20), final=True)  # fmt: skip

    def left() -> set[str]:
        with rt.store.tenant(tenant_id) as s:
            return set(s.scalars(select(OutboxEffect.key)))

    clock.now += purge.KEEP_DONE_EFFECTS - timedelta(hours=1)
    purge.run()
    assert left() == set(kinds)
    clock.now += timedelta(hours=2)
    purge.run()
    assert left() == {"wb-pending", "ev-failed-late"}, "failed 20 days after the others"
    clock.now += timedelta(days=20)
    purge.run()
    assert left() == {"wb-pending"}
