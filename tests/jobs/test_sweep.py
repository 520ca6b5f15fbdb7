"""The daily sweep, the scheduler's tick, polling, and a cron process that never doubles work."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from redis import Redis
from sqlalchemy import select

from adapters.folder.client import FolderClient
from connector import queues
from connector.commands import cron_cmd
from connector.store import tenants
from connector.store.models import (
    Evaluation,
    InboxEvent,
    SettingsVersion,
    SetupRun,
    SweepRun,
    SyncCursor,
)
from jobs import pipeline, schedule, sweep, sweeper
from jobs.runtime import Runtime
from tests.jobs.conftest import run_jobs

OPEN = ["d-1001", "d-1002", "d-1003", "d-1004"]


def _synced(redis: Redis, tenant_id: str) -> None:
    queues.request_refresh(redis, tenant_id, [*OPEN, "d-1005"], window=0)
    run_jobs(redis)


def _no_activity_days(rt: Runtime, tenant_id: str, deal_id: str) -> int | None:
    with rt.store.tenant(tenant_id) as s:
        result = s.get(Evaluation, (tenant_id, deal_id)).result
    found = [a for a in result["alerts"] if a["code"] == "no_activity"]
    return found[0]["facts"]["days"] if found else None


def _run(rt: Runtime, tenant_id: str, day: date) -> SweepRun:
    """The tenant's sweep run of that day, as committed."""
    with rt.store.tenant(tenant_id) as s:
        run = s.get(SweepRun, (tenant_id, day))
        s.expunge(run)
    return run


def test_the_sweep_moves_time_based_alerts_without_any_crm_event(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock
) -> None:
    _synced(redis, tenant_id)
    assert _no_activity_days(rt, tenant_id, "d-1002") == 23
    pulls = len(crm.calls("pull"))
    clock.now += timedelta(days=3)
    assert sweep.start(tenant_id, "2026-11-28")
    run_jobs(redis)
    assert _no_activity_days(rt, tenant_id, "d-1002") == 26
    assert len(crm.calls("pull")) == pulls, "a sweep works from the snapshot"
    assert crm.written("d-1002")["days_since_interaction"] == 26
    run = _run(rt, tenant_id, date(2026, 11, 28))
    assert (run.status, run.done, run.total) == ("done", 4, 4)


def test_the_health_trend_compares_with_the_score_a_week_earlier(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock
) -> None:
    """What a manager reads in the CRM's trend field: nothing until the deal has a score a week
    old, then the move since then, even when the day exactly a week back was not swept; a
    score from further back than two weeks is no trend."""
    _synced(redis, tenant_id)  # the 25th: Acme 100, Umbrella 94

    def trends_on(day: date) -> tuple[str, str]:
        clock.now = datetime(day.year, day.month, day.day, 8, tzinfo=UTC)
        assert sweep.start(tenant_id, day.isoformat())
        run_jobs(redis)
        return crm.written("d-1001")["health_trend"], crm.written("d-1004")["health_trend"]

    assert trends_on(date(2026, 11, 28)) == ("", ""), "no score a week old yet"
    # Against the 25th's, the latest at least a week old (the 26th was not swept): Acme still
    # 100, Umbrella down to 51.
    assert trends_on(date(2026, 12, 3)) == ("steady", "declining")
    # The latest scores, the 3rd's, are more than two weeks old.
    assert trends_on(date(2026, 12, 25)) == ("", "")


def test_a_settings_change_sweeps_the_day_again_under_the_new_settings(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock
) -> None:
    """Today's sweep has run; an admin raises no_activity's threshold: the alerts follow today
    (in the API and the CRM's fields), not at tomorrow's sweep."""
    _synced(redis, tenant_id)
    assert sweep.start(tenant_id, "2026-11-25")
    run_jobs(redis)
    assert _no_activity_days(rt, tenant_id, "d-1002") == 23
    pulls = len(crm.calls("pull"))
    tenants.save_settings(rt.store, tenant_id, {"alerts": {"no_activity": {"days": 30}}},
                          "admin", clock())  # fmt: skip
    assert sweep.again(tenant_id, "2026-11-25")
    run_jobs(redis)
    assert _no_activity_days(rt, tenant_id, "d-1002") is None
    assert "no_activity" not in crm.written("d-1002")["alerts"]
    assert len(crm.calls("pull")) == pulls, "from the snapshot"
    run = _run(rt, tenant_id, date(2026, 11, 25))
    assert (run.status, run.done, run.total) == ("done", 4, 4)


def test_a_settings_change_during_the_days_sweep_reaches_the_deals_already_swept(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sweep is half way (paused by the API allowance, say) when the admin raises a
    threshold: the deals already swept must not keep the old alert till tomorrow."""
    _synced(redis, tenant_id)
    monkeypatch.setattr(sweep, "CHUNK", 2)
    assert sweep.start(tenant_id, "2026-11-25")
    queues.queue(redis, queues.SWEEP).empty()
    sweep.chunk(tenant_id, "2026-11-25", "")  # d-1001 and d-1002 swept, the next chunk queued
    assert _no_activity_days(rt, tenant_id, "d-1002") == 23
    tenants.save_settings(rt.store, tenant_id, {"alerts": {"no_activity": {"days": 30}}},
                          "admin", clock())  # fmt: skip
    assert sweep.again(tenant_id, "2026-11-25")  # what saving the settings asks for
    run_jobs(redis)  # the old pass's next chunk and the new pass both run

    assert _no_activity_days(rt, tenant_id, "d-1002") is None
    assert "no_activity" not in crm.written("d-1002")["alerts"]
    run = _run(rt, tenant_id, date(2026, 11, 25))
    assert (run.status, run.done, run.total) == ("done", 4, 4), "each deal counted once"


def test_a_settings_change_before_the_days_sweep_starts_it_and_not_twice(
    rt: Runtime,
    redis: Redis,
    tenant_id: str,
    crm: FolderClient,
    clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _synced(redis, tenant_id)
    assert sweep.again(tenant_id, "2026-11-25")
    assert not sweep.start(tenant_id, "2026-11-25"), "the day's sweep has begun"
    clock.now += timedelta(seconds=1)
    # Saved again before the first chunk ran: a new pass, whose chain alone sweeps the deals.
    assert sweep.again(tenant_id, "2026-11-25")
    written = _written_deals(monkeypatch)
    run_jobs(redis)
    run = _run(rt, tenant_id, date(2026, 11, 25))
    assert (run.status, run.done, run.total) == ("done", 4, 4)
    assert sorted(written) == OPEN, "each deal swept once"


def _written_deals(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The deals whose results the batches write, as they write them."""
    original = pipeline.apply
    written: list[str] = []

    def apply(session, plan):  # type: ignore[no-untyped-def]
        written.extend(e.deal_id for e in plan.evaluations)
        return original(session, plan)

    monkeypatch.setattr(pipeline, "apply", apply)
    return written


def test_settings_saved_once_the_first_chunk_has_read_the_old_ones_reach_every_deal(
    rt: Runtime,
    redis: Redis,
    tenant_id: str,
    crm: FolderClient,
    clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pass has read the settings but written no deal yet when the admin raises a
    threshold, and the re-sweep the save asks for runs at once (another worker): the deals
    must not keep the old settings' alert till tomorrow."""
    _synced(redis, tenant_id)
    assert _no_activity_days(rt, tenant_id, "d-1002") == 23
    assert sweep.start(tenant_id, "2026-11-25")
    listed = sweep.open_deal_ids
    saved: list[bool] = []

    def saved_meanwhile(*args, **kwargs):  # type: ignore[no-untyped-def]
        # The chunk has its settings and lists its deals: the admin saves now.
        if not saved:
            saved.append(True)
            clock.now += timedelta(seconds=1)
            tenants.save_settings(rt.store, tenant_id, {"alerts": {"no_activity": {"days": 30}}},
                                  "admin", clock())  # fmt: skip
            sweep.again(tenant_id, "2026-11-25")  # what the save asks for
        return listed(*args, **kwargs)

    monkeypatch.setattr(sweep, "open_deal_ids", saved_meanwhile)
    run_jobs(redis)

    assert saved
    assert _no_activity_days(rt, tenant_id, "d-1002") is None
    assert "no_activity" not in crm.written("d-1002")["alerts"]
    run = _run(rt, tenant_id, date(2026, 11, 25))
    assert (run.status, run.done, run.total) == ("done", 4, 4), "each deal counted once"


def test_settings_saved_during_an_installs_first_sync_start_no_sweep(
    rt: Runtime, redis: Redis, tenant_id: str, clock
) -> None:
    """The first sync's refreshes evaluate each deal under the settings in force; a sweep
    started now would sweep the few deals stored so far and count as the day's."""
    with rt.store.tenant(tenant_id) as s:
        s.add(SetupRun(tenant_id=tenant_id, status="syncing", started_at=clock(),
                       updated_at=clock()))  # fmt: skip
    assert not sweep.again(tenant_id, "2026-11-25")
    with rt.store.tenant(tenant_id) as s:
        assert s.get(SweepRun, (tenant_id, date(2026, 11, 25))) is None


def test_a_sweep_runs_once_a_day_in_chained_chunks(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _synced(redis, tenant_id)
    monkeypatch.setattr(sweep, "CHUNK", 3)
    monkeypatch.setattr(sweep, "BATCH", 2)
    assert sweep.start(tenant_id, "2026-11-25")
    assert not sweep.start(tenant_id, "2026-11-25"), "the same day twice"
    chunks = []
    original = sweep.chunk
    monkeypatch.setattr(sweep, "chunk", lambda *a: (chunks.append(a), original(*a)))
    run_jobs(redis)
    assert [c[2] for c in chunks] == ["", "d-1003"]
    with rt.store.tenant(tenant_id) as s:
        (run,) = s.scalars(select(SweepRun))
    assert (run.status, run.done, run.total) == ("done", 4, 4)


def _second_write_fails(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Batches of two deals whose second write fails once; the deals of each write tried."""
    monkeypatch.setattr(sweep, "BATCH", 2)
    original = pipeline.apply
    writes: list[list[str]] = []

    def apply(session, plan):  # type: ignore[no-untyped-def]
        writes.append([e.deal_id for e in plan.evaluations])
        if len(writes) == 2:
            raise RuntimeError("the database went away")
        return original(session, plan)

    monkeypatch.setattr(pipeline, "apply", apply)
    return writes


def test_a_batch_whose_write_fails_fails_the_chunk_and_frees_its_deals(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches are written behind the evaluation: the second batch's write failing stops the
    chunk job (failed, for `dealradar jobs retry`), keeps the first batch's results, and leaves
    no deal locked against live refreshes."""
    _synced(redis, tenant_id)
    writes = _second_write_fails(monkeypatch)
    assert sweep.start(tenant_id, "2026-11-25")
    run_jobs(redis)
    assert writes == [["d-1001", "d-1002"], ["d-1003", "d-1004"]]
    assert queues.queue(redis, queues.SWEEP).failed_job_registry.count == 1
    run = _run(rt, tenant_id, date(2026, 11, 25))
    assert (run.status, run.done) == ("running", 2)
    locks = queues.DealLocks(redis, tenant_id)
    taken, busy = locks.acquire(OPEN)
    locks.release()
    assert (taken, busy) == (OPEN, [])


def test_a_failed_chunk_retried_goes_on_after_its_last_committed_batch(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _synced(redis, tenant_id)
    writes = _second_write_fails(monkeypatch)
    assert sweep.start(tenant_id, "2026-11-25")
    run_jobs(redis)
    failed = queues.queue(redis, queues.SWEEP).failed_job_registry
    (job_id,) = failed.get_job_ids()
    failed.requeue(job_id)  # what `dealradar jobs retry` does
    run_jobs(redis)
    assert writes == [["d-1001", "d-1002"], ["d-1003", "d-1004"], ["d-1003", "d-1004"]]
    run = _run(rt, tenant_id, date(2026, 11, 25))
    assert (run.status, run.done, run.total) == ("done", 4, 4)


def test_a_chunk_queued_twice_sweeps_and_counts_each_deal_once(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _synced(redis, tenant_id)
    monkeypatch.setattr(sweep, "BATCH", 2)
    original = pipeline.apply
    swept: list[str] = []
    monkeypatch.setattr(
        pipeline, "apply",
        lambda s, plan: (swept.extend(e.deal_id for e in plan.evaluations), original(s, plan))[1],
    )  # fmt: skip
    assert sweep.start(tenant_id, "2026-11-25")
    queues.queue(redis, queues.SWEEP).enqueue("jobs.sweep.chunk", tenant_id, "2026-11-25", "")
    run_jobs(redis)
    assert sorted(swept) == OPEN
    run = _run(rt, tenant_id, date(2026, 11, 25))
    assert (run.status, run.done, run.total) == ("done", 4, 4)


def test_a_chunk_overtaken_by_another_run_neither_counts_nor_chains(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs of one chunk read the same cursor (the sweeper resumed a chain that was only
    slow): the one whose batch is committed second finds the cursor moved, so it adds nothing
    to the progress and queues no next chunk; the other carries the sweep on."""
    _synced(redis, tenant_id)
    monkeypatch.setattr(sweep, "CHUNK", 2)
    original = pipeline.prepare

    def prepare(session, tenant_id, bundles, settings, now):  # type: ignore[no-untyped-def]
        with rt.store.tenant(tenant_id) as s:  # the other run commits this batch meanwhile
            run = s.get(SweepRun, (tenant_id, date(2026, 11, 25)))
            run.cursor, run.done = "d-1002", 2
        return original(session, tenant_id, bundles, settings, now)

    assert sweep.start(tenant_id, "2026-11-25")
    queues.queue(redis, queues.SWEEP).empty()
    monkeypatch.setattr(pipeline, "prepare", prepare)
    sweep.chunk(tenant_id, "2026-11-25", "")
    run = _run(rt, tenant_id, date(2026, 11, 25))
    assert (run.status, run.cursor, run.done) == ("running", "d-1002", 2)
    assert queues.queue(redis, queues.SWEEP).count == 0, "the run ahead chains the sweep"


def test_the_sweeper_resumes_a_sweep_whose_chain_was_lost(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock
) -> None:
    """Its chunk job gone (Redis emptied, a worker killed for good): the day's sweep is taken up
    again from its cursor once it has not moved for STALLED, once."""
    _synced(redis, tenant_id)
    assert sweep.start(tenant_id, "2026-11-25")
    queues.queue(redis, queues.SWEEP).empty()
    assert sweeper.run()["sweeps"] == 0, "not stalled yet"
    clock.now += sweep.STALLED + timedelta(seconds=1)
    assert sweeper.run()["sweeps"] == 1
    assert sweeper.run()["sweeps"] == 0, "resumed once, not every minute"
    run_jobs(redis)
    run = _run(rt, tenant_id, date(2026, 11, 25))
    assert (run.status, run.done, run.total) == ("done", 4, 4)
    clock.now += sweep.STALLED * 2
    assert sweeper.run()["sweeps"] == 0, "a finished sweep stays finished"


def test_an_install_setup_whose_job_was_lost_is_requested_again(
    rt: Runtime, redis: Redis, tenant_id: str, clock
) -> None:
    """Its worker killed mid-sync (a deploy), its job timed out, or its retry lost with Redis:
    the setup would stay `syncing` for good, its deals never listed."""
    with rt.store.tenant(tenant_id) as s:
        s.add(SetupRun(tenant_id=tenant_id, status="syncing", started_at=clock(),
                       updated_at=clock()))  # fmt: skip
    clock.now += timedelta(minutes=20)
    assert sweeper.run()["setups"] == 0, "a live setup may be on a slow page"
    clock.now += sweeper.SETUP_STALLED
    assert sweeper.run()["setups"] == 1
    jobs = queues.queue(redis, queues.EVENTS).get_jobs()
    assert [(j.func_name, j.args) for j in jobs] == [("jobs.install.setup", (tenant_id,))]
    assert sweeper.run()["setups"] == 1 and len(queues.queue(redis, queues.EVENTS)) == 1


def test_the_tick_starts_each_sweep_at_the_tenants_local_hour_once(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock
) -> None:
    _synced(redis, tenant_id)
    redis.delete(queues.scheduled_key(tenant_id, "poll"))
    clock.now = datetime(2026, 11, 26, 4, 59, tzinfo=UTC)  # 05:59 in Paris
    assert schedule.tick()["sweeps"] == 0
    clock.now = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)  # 06:00 in Paris
    assert schedule.tick()["sweeps"] == 1
    run_jobs(redis)
    assert schedule.tick()["sweeps"] == 0, "already swept today"
    tenants.save_settings(rt.store, tenant_id, {"schedule": {"sweep_hour": 23}}, "admin", clock())
    clock.now = datetime(2026, 11, 27, 21, 59, tzinfo=UTC)  # 22:59 in Paris
    assert schedule.tick()["sweeps"] == 0
    clock.now = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)
    assert schedule.tick()["sweeps"] == 1


def test_settings_whose_re_sweep_was_lost_are_swept_by_the_tick(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock
) -> None:
    """The re-sweep a save queued is lost (its worker killed as it took the job, Redis emptied)
    and the admin's next save, minutes later, finds it still marked as queued: the tick asks
    for it again once the mark has lapsed, instead of leaving the new threshold for tomorrow."""
    _synced(redis, tenant_id)
    redis.delete(queues.scheduled_key(tenant_id, "poll"))
    clock.now = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # 06:00 in Paris: the day's sweep
    assert schedule.tick()["sweeps"] == 1
    run_jobs(redis)
    assert _no_activity_days(rt, tenant_id, "d-1002") == 23

    def save(days: int) -> None:  # what PATCH /api/v1/settings does
        tenants.save_settings(rt.store, tenant_id, {"alerts": {"no_activity": {"days": days}}},
                              "admin", clock())  # fmt: skip
        queues.request_sweep_again(redis, tenant_id, "2026-11-25")

    clock.now += timedelta(hours=3)
    save(25)
    queues.queue(redis, queues.SWEEP).empty()  # the job is lost; its mark is not
    clock.now += timedelta(minutes=5)
    save(30)
    assert queues.queue(redis, queues.SWEEP).count == 0, "held back by the lost one's mark"

    clock.now += timedelta(minutes=4)
    schedule.tick()
    run_jobs(redis)
    assert _no_activity_days(rt, tenant_id, "d-1002") == 23, "not before the mark lapses"
    redis.delete(queues.scheduled_key(tenant_id, queues.sweep_again_mark("2026-11-25")))
    clock.now += timedelta(minutes=11)  # the last save is 15 minutes old
    schedule.tick()
    run_jobs(redis)
    assert _no_activity_days(rt, tenant_id, "d-1002") is None
    assert "no_activity" not in crm.written("d-1002")["alerts"]
    clock.now += timedelta(minutes=20)
    assert schedule.tick()["resweeps"] == 0, "swept under the latest settings: nothing more"


def test_a_day_whose_clocks_skip_the_sweep_hour_is_swept_all_the_same(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock
) -> None:
    """America/Nuuk, 28 March 2026: the clocks go from 22:59 to 00:00, so that day has no
    23:00; a team sweeping at 23:00 still gets its day's alerts, at 22:00."""
    _synced(redis, tenant_id)
    document = {"timezone": "America/Nuuk", "schedule": {"sweep_hour": 23}}
    tenants.save_settings(rt.store, tenant_id, document, "admin", clock())
    nuuk = ZoneInfo("America/Nuuk")
    clock.now = datetime(2026, 3, 27, 12, 0, tzinfo=nuuk).astimezone(UTC)
    while clock.now < datetime(2026, 3, 30, 12, 0, tzinfo=nuuk):
        if schedule.tick()["sweeps"]:
            run_jobs(redis)
        clock.now += timedelta(minutes=10)
    with rt.store.tenant(tenant_id) as s:
        days = sorted(s.scalars(select(SweepRun.day)).all())
    assert date(2026, 3, 28) in days
    assert days[-3:] == [date(2026, 3, 27), date(2026, 3, 28), date(2026, 3, 29)]


def test_a_tenant_whose_settings_no_longer_load_holds_back_no_other_tenant(
    rt: Runtime, redis: Redis, tmp_path, clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Saved settings today's code refuses (a holiday calendar a library upgrade dropped) fail
    that tenant's tick alone: the tenants after it still get their sweep."""
    broken, _ = tenants.create_tenant(rt.store, crm="test", account_id=str(tmp_path / "a"),
                                      now=clock())  # fmt: skip
    with rt.store.tenant(broken.id) as s:
        s.add(SettingsVersion(tenant_id=broken.id, version=1, changed_at=clock(),
                              document={"tasks": {"public_holidays": "XX"}}))  # fmt: skip
    healthy, _ = tenants.create_tenant(rt.store, crm="test", account_id=str(tmp_path / "b"),
                                       now=clock())  # fmt: skip
    clock.now = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)  # past 06:00 in both (UTC) tenants
    assert schedule.tick()["sweeps"] >= 1
    run_jobs(redis)
    with rt.store.tenant(healthy.id) as s:
        assert s.get(SweepRun, (healthy.id, date(2026, 11, 26))) is not None
    assert f"tenant {broken.id} skipped" in caplog.text


def test_the_days_sweep_waits_for_an_installs_first_sync(
    rt: Runtime, redis: Redis, tenant_id: str, clock
) -> None:
    """Installed after the sweep hour: a sweep started while the setup still lists the CRM's
    deals would sweep none and be the day's; it waits, within FIRST_SYNC_WAIT."""
    redis.delete(queues.scheduled_key(tenant_id, "poll"))
    clock.now = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)  # 15:00 in Paris
    with rt.store.tenant(tenant_id) as s:
        s.add(SetupRun(tenant_id=tenant_id, status="syncing", started_at=clock(),
                       updated_at=clock()))  # fmt: skip
    assert schedule.tick()["sweeps"] == 0
    clock.now += sweep.FIRST_SYNC_WAIT
    assert schedule.tick()["sweeps"] == 1, "a setup stuck for hours holds it back no longer"
    with rt.store.tenant(tenant_id) as s:
        s.get(SetupRun, tenant_id).status = "done"
    clock.now += timedelta(days=1)
    assert schedule.tick()["sweeps"] == 1


def test_deals_a_poll_found_are_refreshed_though_redis_lost_their_request(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock
) -> None:
    """The poll's cursor moved past the deals it found: their refresh, asked on Redis alone,
    was lost for good with Redis (flushed, a drain killed or timed out after taking them). The
    page is kept as a pending inbox event, which the sweeper asks for again."""
    clock.now = datetime.now(UTC)  # the folder CRM's modification times are real time
    assert schedule.poll(tenant_id) == 5
    redis.flushdb()  # the pending set and the drain job gone
    assert crm.calls("pull") == []
    clock.now += timedelta(seconds=rt.stale_seconds + 1)
    assert sweeper.run()["deals"] == 5
    run_jobs(redis)
    with rt.store.tenant(tenant_id) as s:
        assert {e.deal_id for e in s.scalars(select(Evaluation))} == set(OPEN) | {"d-1005"}
        assert set(s.scalars(select(InboxEvent.status))) == {"done"}, "settled by the refresh"


def test_polling_requests_changed_deals_once_per_interval_and_checkpoints(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock
) -> None:
    clock.now = datetime.now(UTC)  # the folder's modification times are real
    assert schedule.tick()["polls"] == 1
    assert schedule.tick()["polls"] == 0, "not again within the interval"
    run_jobs(redis)
    assert sorted(crm.calls("pull")[0]["ids"]) == sorted([*OPEN, "d-1005"])
    with rt.store.tenant(tenant_id) as s:
        assert s.get(SyncCursor, (tenant_id, "deals")) is not None
    assert schedule.poll(tenant_id) == 0, "nothing changed since the cursor"
    time.sleep(0.05)
    clock.now = datetime.now(UTC)
    crm.put_deal({**_doc(crm, "d-1001")})
    assert schedule.poll(tenant_id) == 1


def _doc(crm: FolderClient, deal_id: str) -> dict:
    import json

    return json.loads((crm.root / "deals" / f"{deal_id}.json").read_text())


def test_a_second_cron_process_does_not_double_the_scheduled_jobs(redis: Redis) -> None:
    stops = [threading.Event(), threading.Event()]
    crons = [
        threading.Thread(target=cron_cmd.run_cron, args=(redis,), kwargs={"interval": 1, "stop": s})
        for s in stops
    ]
    for c in crons:
        c.start()
    time.sleep(3.5)
    ticks = queues.queue(redis, queues.SWEEP).count
    sweeps = queues.queue(redis, queues.EVENTS).count
    assert 3 <= ticks <= 5 and 3 <= sweeps <= 5, (ticks, sweeps)
    leader = redis.get(cron_cmd.LEADER_KEY)
    for s in stops:
        s.set()
    for c in crons:
        c.join()
    assert leader is not None and redis.get(cron_cmd.LEADER_KEY) is None, "the leader resigned"
