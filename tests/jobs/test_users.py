"""Who left: the sweep's start reads the CRM's users, so that a rep deactivated in the CRM is
known before their rotting deals get tasks; through real RQ workers on the folder CRM."""

from __future__ import annotations

from datetime import timedelta

from redis import Redis
from sqlalchemy import select

from adapters.folder.client import FolderClient
from connector import queues
from connector.store import tenants
from connector.store.models import SweepRun, UserRow
from engine.model import dump_bundle
from jobs import sweep, users
from jobs.runtime import Runtime
from tests.jobs.conftest import leaves_the_team, run_jobs

DEALS = ["d-1001", "d-1002", "d-1003", "d-1004", "d-1005"]


def _active(rt: Runtime, tenant_id: str, user_id: str) -> bool:
    with rt.store.tenant(tenant_id) as s:
        return s.get(UserRow, (tenant_id, user_id)).active


def test_the_sweep_learns_who_left_before_it_makes_their_deals_tasks(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock
) -> None:
    queues.request_refresh(redis, tenant_id, DEALS, window=0)
    run_jobs(redis)
    assert _active(rt, tenant_id, "u-tom")
    before, calls = set(crm.tasks()), len(crm.calls("create_task"))
    leaves_the_team(crm, "u-tom")
    tenants.save_settings(
        rt.store, tenant_id, {"tasks": {"fallback_owner": "u-claire"}}, "admin", clock()
    )

    clock.now += timedelta(days=40)  # the close dates pass, the deals grow old: new alerts
    assert sweep.start(tenant_id, "2027-01-04")
    run_jobs(redis)

    assert not _active(rt, tenant_id, "u-tom"), "read from the CRM's users, no deal changed"
    assert _active(rt, tenant_id, "u-claire")
    made = {i: t for i, t in crm.tasks().items() if i not in before}
    toms = [t for t in made.values() if t["deal_id"] in ("d-1002", "d-1004")]
    assert toms, "the sweep started alerts on Tom's deals"
    assert {t["owner_id"] for t in toms} == {"u-claire"}
    tried = [c.get("owner") for c in crm.calls("create_task")[calls:]]
    assert "u-tom" not in tried, "never tried for Tom"


def test_a_crm_outage_reading_users_is_retried_and_the_sweep_goes_on(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock
) -> None:
    queues.request_refresh(redis, tenant_id, DEALS, window=0)
    run_jobs(redis)
    crm.add_fault("users_by_id", error="transient")
    assert sweep.start(tenant_id, "2026-11-26")
    run_jobs(redis)

    assert len(crm.calls("users_by_id")) == 1
    sweeps = queues.queue(redis, queues.SWEEP)
    assert sweeps.scheduled_job_registry.count == 1, "tried again after its backoff"
    with rt.store.tenant(tenant_id) as s:
        assert s.scalars(select(SweepRun.status)).one() == "done"

    leaves_the_team(crm, "u-claire")
    assert users.refresh(tenant_id) == {"users": 2, "inactive": 1}
    assert not _active(rt, tenant_id, "u-claire")


def test_a_fallback_owner_who_left_is_learned_though_they_own_no_open_deal(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock
) -> None:
    """The manager named as `tasks.fallback_owner` hands her open deals over and leaves: the
    users' reading must ask about her too, or the departed reps' tasks keep going to her."""
    tenants.save_settings(
        rt.store, tenant_id, {"tasks": {"fallback_owner": "u-claire"}}, "admin", clock()
    )
    queues.request_refresh(redis, tenant_id, DEALS, window=0)
    run_jobs(redis)
    for deal_id in ("d-1001", "d-1003"):  # Claire's open deals go to Tom
        doc = dump_bundle(crm.pull([deal_id]).bundles[0])
        doc["deal"]["owner"] = "u-tom"
        doc["users"] = [{"id": "u-tom", "name": "Tom", "email": "tom@vendor.example"}]
        crm.put_deal(doc)
    queues.request_refresh(redis, tenant_id, ["d-1001", "d-1003"], window=0)
    run_jobs(redis)
    leaves_the_team(crm, "u-claire")

    assert users.refresh(tenant_id) == {"users": 2, "inactive": 1}
    assert not _active(rt, tenant_id, "u-claire")
    assert _active(rt, tenant_id, "u-tom")


def test_a_rep_who_left_hands_their_open_tasks_to_the_fallback_owner(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock
) -> None:
    """Tom leaves and nobody hands his deals over yet: the tasks Deal Radar gave him would sit
    in a list nobody reads. Once the CRM's users are read, they go to the fallback owner; the
    deals stay Tom's, and the tasks he had completed stay his."""
    tenants.save_settings(
        rt.store, tenant_id, {"tasks": {"fallback_owner": "u-claire"}}, "admin", clock()
    )
    queues.request_refresh(redis, tenant_id, DEALS, window=0)
    run_jobs(redis)
    toms = {i for i, t in crm.tasks().items() if t["owner_id"] == "u-tom"}
    assert toms
    done = sorted(toms)[0]
    crm.complete_task(done)  # Tom did this one before leaving
    leaves_the_team(crm, "u-tom")

    assert users.refresh(tenant_id)["inactive"] == 1
    run_jobs(redis)
    tasks = crm.tasks()
    assert {tasks[i]["owner_id"] for i in toms - {done}} == {"u-claire"}
    assert tasks[done]["owner_id"] == "u-tom"
    handed = len(crm.calls("reassign_task"))

    assert users.refresh(tenant_id)["inactive"] == 1  # the next day: nothing more to do
    run_jobs(redis)
    assert len(crm.calls("reassign_task")) == handed
