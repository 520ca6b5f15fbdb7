"""CRM tasks per alert episode and notes on grade changes, through the real jobs: refresh,
dispatch, the CRM actions run, the sweeper; a real Redis and RQ worker, the folder CRM with
injected faults, the store on SQLite (and PostgreSQL when DATABASE_URL names one)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from redis import Redis
from rq import Queue
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from adapters import ADAPTERS
from adapters.folder.client import FolderClient
from connector import queues
from connector.store import tenants
from connector.store.models import AlertEpisode, Evaluation, OutboxEffect, Tenant, UserRow
from connector.store.times import from_db
from engine.model import dump_bundle
from jobs import crm_actions, crm_tasks, purge, sweeper
from jobs.crm_effects import NOTE, TASK, TASK_DONE, TASK_OWNER, Context, Effect, propose
from jobs.policy import BACKOFF_CAP
from jobs.runtime import Runtime
from tests.jobs.conftest import Clock, leaves_the_team, log_a_call, run_jobs

DEALS = ["d-1001", "d-1002", "d-1003", "d-1004", "d-1005"]
PARIS = ZoneInfo("Europe/Paris")
THURSDAY_17H = datetime(2026, 11, 26, 17, 0, tzinfo=PARIS)
"""The clock says Wednesday 25 November 2026, 09:00 in Paris: due the next business day."""


def _refresh(redis: Redis, tenant_id: str, deals: list[str] = DEALS) -> None:
    queues.request_refresh(redis, tenant_id, deals, window=0)
    run_jobs(redis)


def _episodes(rt: Runtime, tenant_id: str) -> list[AlertEpisode]:
    with rt.store.tenant(tenant_id) as s:
        rows = list(s.scalars(select(AlertEpisode).order_by(AlertEpisode.id)))
        s.expunge_all()
        return rows


def _effects(rt: Runtime, tenant_id: str, kind: str) -> list[OutboxEffect]:
    with rt.store.tenant(tenant_id) as s:
        rows = list(s.scalars(select(OutboxEffect).where(OutboxEffect.kind == kind)))
        s.expunge_all()
        return rows


def _episode(rt: Runtime, tenant_id: str, deal_id: str, code: str) -> AlertEpisode:
    return next(e for e in _episodes(rt, tenant_id) if (e.deal_id, e.code) == (deal_id, code))


def _task_of(crm: FolderClient, deal_id: str, subject_start: str) -> list[dict[str, Any]]:
    return [
        t for t in crm.tasks().values()
        if t["deal_id"] == deal_id and t["subject"].startswith(subject_start)
    ]  # fmt: skip


def _after_stale(rt: Runtime, clock: Clock, seconds: float) -> None:
    """Time passes beyond a retry's backoff; the sweeper puts the pending work back."""
    clock.now += timedelta(seconds=seconds + rt.stale_seconds + 1)
    sweeper.run()
    run_jobs(rt.redis)


def test_an_episode_start_makes_one_task_for_the_owner_due_next_business_day(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient
) -> None:
    _refresh(redis, tenant_id)

    tasks = crm.tasks()
    wanted = {
        (e.deal_id, e.code) for e in _episodes(rt, tenant_id)
        if e.code not in ("no_meeting_scheduled", "deal_too_old")
    }  # fmt: skip
    assert len(tasks) == len(wanted) > 5, "one task per episode whose alert makes tasks"
    made = _task_of(crm, "d-1002", "Get back in touch")
    assert len(made) == 1
    task = made[0]
    assert task["subject"] == "Get back in touch: Globex expansion"
    assert task["owner_id"] == "u-tom"
    assert task["body"].startswith("Deal Radar: No activity for 23 days (threshold 10).")
    assert task["status"] == "open"
    assert datetime.fromisoformat(task["due"]) == THURSDAY_17H
    assert datetime.fromisoformat(task["due"]).utcoffset() == timedelta(hours=1)
    episode = _episode(rt, tenant_id, "d-1002", "no_activity")
    task_id = next(i for i, t in tasks.items() if t is task or t == task)
    tom = {"task_for_owner": "u-tom", "task_assignee": "u-tom"}
    assert episode.crm_refs == {"task": task_id, **tom}
    assert task["key"] == f"crm_task:{episode.id}"
    assert not [t for t in tasks.values() if "meeting" in t["subject"]], "off by default"
    assert all(e.status == "done" for e in _effects(rt, tenant_id, TASK))


def test_the_same_run_repeated_makes_no_second_task(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient
) -> None:
    _refresh(redis, tenant_id)
    before = crm.tasks()
    creates = len(crm.calls("create_task"))

    _refresh(redis, tenant_id)
    crm_actions.run(tenant_id)
    with rt.store.tenant(tenant_id) as s:  # every effect proposed again: keys refuse them
        rows = [(e.key, e.kind, dict(e.payload)) for e in s.scalars(select(OutboxEffect))]
    assert propose(tenant_id, [r for r in rows if r[1] == TASK]) == 0
    run_jobs(redis)

    assert crm.tasks() == before
    assert len(crm.calls("create_task")) == creates


def test_the_alert_ending_completes_its_task_and_only_that_one(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient
) -> None:
    _refresh(redis, tenant_id)
    log_a_call(crm, "d-1002", "2026-11-25T07:30:00Z")
    _refresh(redis, tenant_id, ["d-1002"])

    episode = _episode(rt, tenant_id, "d-1002", "no_activity")
    assert episode.ended_at is not None
    assert episode.crm_refs["task_completed"] is True
    [task] = _task_of(crm, "d-1002", "Get back in touch")
    assert task["status"] == "completed"
    ended = {e.crm_refs["task"] for e in _episodes(rt, tenant_id) if e.ended_at and e.crm_refs}
    completed = {i for i, t in crm.tasks().items() if t["status"] == "completed"}
    assert completed == ended, "the tasks of the alerts the call ended, and only those"
    assert len(ended) < len(crm.tasks())
    assert len(crm.calls("complete_task")) == len(ended)

    _refresh(redis, tenant_id, ["d-1002"])  # again: nothing more to complete
    crm_actions.run(tenant_id)
    assert len(crm.calls("complete_task")) == len(ended)


def test_no_completion_is_asked_for_an_alert_that_made_no_task(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient
) -> None:
    _refresh(redis, tenant_id)
    # A meeting ends no_meeting_scheduled (tasks off for it): no completion effect at all.
    doc = dump_bundle(crm.pull(["d-1002"]).bundles[0])
    doc["activities"].append(
        {"id": "a-meet", "kind": "meeting", "at": "2026-12-02T10:00:00Z", "direction": "outbound",
         "status": "scheduled", "contacts": ["c-10"], "cc": [], "user": "u-tom"}
    )  # fmt: skip
    crm.put_deal(doc)
    _refresh(redis, tenant_id, ["d-1002"])
    ended = _episode(rt, tenant_id, "d-1002", "no_meeting_scheduled")
    assert ended.ended_at is not None
    assert _effects(rt, tenant_id, TASK_DONE) == []


def test_a_rate_limit_is_retried_after_its_backoff_never_dropped(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    crm.add_fault("create_task", error="rate_limited", retry_after=30)
    _refresh(redis, tenant_id)

    assert len(crm.calls("create_task")) == 1, "a rate limit stops the run: the CRM said slow down"
    assert crm.tasks() == {}
    pending = _effects(rt, tenant_id, TASK)
    assert pending and all(e.status == "pending" for e in pending)
    limited = [e for e in pending if e.last_error]
    assert len(limited) == 1 and "rate limited" in limited[0].last_error
    assert from_db(limited[0].due_at) >= clock() + timedelta(seconds=30)
    scheduled = Queue(queues.ACTIONS, connection=redis).scheduled_job_registry
    assert scheduled.count == 1, "the retry is scheduled, after the Retry-After"

    _after_stale(rt, clock, 30)
    assert all(e.status == "done" for e in _effects(rt, tenant_id, TASK))
    assert len(crm.tasks()) == len(pending), "every task made, each once"


def test_a_lost_answer_then_a_retry_still_makes_one_task(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    # The CRM made the task, then the connection dropped: a Transient after the fact.
    crm.add_fault("create_task", error="transient", after=True)
    _refresh(redis, tenant_id)
    failed = [e for e in _effects(rt, tenant_id, TASK) if e.status == "pending"]
    assert len(failed) == 1 and "transient" in failed[0].last_error
    made = len(crm.tasks())

    _after_stale(rt, clock, BACKOFF_CAP)
    assert len(crm.tasks()) == made, "the retry found the task the lost answer made"
    assert all(e.status == "done" for e in _effects(rt, tenant_id, TASK))
    episode_id = failed[0].payload["episode_id"]
    [episode] = [e for e in _episodes(rt, tenant_id) if e.id == episode_id]
    assert crm.tasks()[episode.crm_refs["task"]]["key"] == failed[0].key


def test_a_commit_that_fails_after_the_crm_answered_makes_no_second_task(
    rt: Runtime,
    redis: Redis,
    tenant_id: str,
    crm: FolderClient,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a worker killed between the CRM's answer and the commit leaves behind: a task in
    the CRM, its effect still pending, nothing recorded on the episode."""
    real_record = crm_actions._record
    failures: list[str] = []

    def commit_fails_once(ctx: Context, effect: Effect, outcome: Any) -> None:
        if not failures and effect.kind == TASK:
            failures.append(effect.key)
            raise OperationalError("COMMIT", {}, Exception("the database went away"))
        real_record(ctx, effect, outcome)

    monkeypatch.setattr(crm_actions, "_record", commit_fails_once)
    _refresh(redis, tenant_id)  # the run's job fails with the commit
    [key] = failures
    [lost] = [e for e in _effects(rt, tenant_id, TASK) if e.key == key]
    assert lost.status == "pending" and lost.attempts == 1
    assert [t["key"] for t in crm.tasks().values()] == [key], "the CRM has the task"

    _after_stale(rt, clock, 0)  # the sweeper finds the effect still pending
    assert [t["key"] for t in crm.tasks().values()].count(key) == 1
    assert len(crm.tasks()) == len(_effects(rt, tenant_id, TASK))
    [found] = [e for e in _effects(rt, tenant_id, TASK) if e.key == key]
    assert found.status == "done" and found.attempts == 2
    episode = next(e for e in _episodes(rt, tenant_id) if e.id == found.payload["episode_id"])
    assert crm.tasks()[episode.crm_refs["task"]]["key"] == key
    assert len([c for c in crm.calls("create_task") if c["key"] == key]) == 2


def test_a_deal_gone_from_the_crm_is_skipped_with_a_log(
    rt: Runtime,
    redis: Redis,
    tenant_id: str,
    crm: FolderClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    crm.add_fault("create_task", error="not_found")
    with caplog.at_level(logging.INFO, logger="jobs.crm_actions"):
        _refresh(redis, tenant_id)
    skipped = [e for e in _effects(rt, tenant_id, TASK) if "skipped" in (e.result or {})]
    assert len(skipped) == 1 and skipped[0].status == "done"
    assert any("nothing to do" in r.getMessage() for r in caplog.records)
    assert len(crm.tasks()) == len(_effects(rt, tenant_id, TASK)) - 1, "the others are made"


def test_invalid_data_fails_that_effect_and_the_run_goes_on(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient
) -> None:
    crm.add_fault("create_task", error="invalid_request")
    _refresh(redis, tenant_id)
    effects = _effects(rt, tenant_id, TASK)
    failed = [e for e in effects if e.status == "failed"]
    assert len(failed) == 1 and "invalid_request" in failed[0].last_error
    assert len(crm.tasks()) == len(effects) - 1


def test_an_unexpected_error_fails_that_effect_and_the_run_goes_on(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An effect that raises something no CRM error explains (a setting the adapter cannot
    take, a bug) is recorded as failed with its reason; it used to end the run, and the next
    run took it first again: every task of the tenant waited behind it for good."""
    create, calls = crm_actions.EFFECTS[TASK], []

    def first_one_breaks(ctx: Context, effect: Effect) -> Any:
        calls.append(effect.key)
        if len(calls) == 1:
            raise ValueError("'claire.manager' is not a Sell id (Sell's ids are integers)")
        return create(ctx, effect)

    monkeypatch.setitem(crm_actions.EFFECTS, TASK, first_one_breaks)
    _refresh(redis, tenant_id)
    effects = _effects(rt, tenant_id, TASK)
    failed = [e for e in effects if e.status == "failed"]
    assert len(failed) == 1 and "ValueError" in failed[0].last_error
    assert "not a Sell id" in failed[0].last_error
    assert all(e.status == "done" for e in effects if e not in failed)
    assert len(crm.tasks()) == len(effects) - 1


def test_a_revoked_grant_suspends_the_tenant_and_the_tasks_wait(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient
) -> None:
    crm.add_fault("create_task", error="permission_denied")
    _refresh(redis, tenant_id)
    tenant = tenants.get_tenant(rt.store, tenant_id)
    assert tenant.status == "suspended" and "injected permission_denied" in tenant.status_reason
    assert all(e.status == "pending" for e in _effects(rt, tenant_id, TASK))
    assert crm.tasks() == {}


def test_an_expired_token_is_retried_and_suspends_only_when_refreshing_keeps_failing(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    crm.add_fault("create_task", error="auth_expired")
    _refresh(redis, tenant_id)
    assert tenants.get_tenant(rt.store, tenant_id).status == "active"
    assert crm.tasks() == {}, "a token the CRM refuses holds back the tenant's effects"
    _after_stale(rt, clock, BACKOFF_CAP)
    assert len(crm.tasks()) == len(_effects(rt, tenant_id, TASK)), "retried, then made"

    log_a_call(crm, "d-1002", "2026-11-25T07:30:00Z")  # completions to do
    for _ in range(3):
        crm.add_fault("complete_task", error="auth_expired")
    _refresh(redis, tenant_id, ["d-1002"])
    assert len(crm.calls("complete_task")) == 1, "a refused token stops the run"
    for tries in (2, 3):
        assert tenants.get_tenant(rt.store, tenant_id).status == "active"
        _after_stale(rt, clock, BACKOFF_CAP)
        assert len(crm.calls("complete_task")) == tries
    tenant = tenants.get_tenant(rt.store, tenant_id)
    assert tenant.status == "suspended" and "reinstall" in tenant.status_reason


def test_a_completion_waits_for_its_task_then_closes_it(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    """The CRM refused the first create; the alert ended meanwhile. That first try may have
    reached the CRM, so its task is made (or found) and then completed: no open task outlives
    its alert. The episodes that ended before their first try get no task at all."""
    crm.add_fault("create_task", error="rate_limited", retry_after=120)
    _refresh(redis, tenant_id, ["d-1002"])
    [tried] = [e for e in _effects(rt, tenant_id, TASK) if e.last_error]
    assert all(e.status == "pending" for e in _effects(rt, tenant_id, TASK))
    log_a_call(crm, "d-1002", "2026-11-25T07:30:00Z")
    _refresh(redis, tenant_id, ["d-1002"])
    waiting = _effects(rt, tenant_id, TASK_DONE)
    assert waiting and all(e.status == "pending" for e in waiting)
    assert crm.tasks() == {} and crm.calls("complete_task") == []

    _after_stale(rt, clock, 120)
    _after_stale(rt, clock, 0)
    episodes = {e.id: e for e in _episodes(rt, tenant_id)}
    first = episodes[tried.payload["episode_id"]]
    assert first.ended_at is not None
    assert crm.tasks()[first.crm_refs["task"]]["status"] == "completed"
    done = _effects(rt, tenant_id, TASK_DONE)
    assert all(e.status == "done" for e in done)
    assert [e.attempts for e in done if e.result.get("completed")] == [1], "waits are no tries"
    never_tried = [e for e in episodes.values() if e.ended_at and e.id != first.id]
    assert never_tried and all(not e.crm_refs for e in never_tried)
    assert {t["status"] for t in crm.tasks().values()} == {"open", "completed"}
    assert len(crm.tasks()) == 1 + sum(
        1
        for e in episodes.values()
        if not e.ended_at and e.code not in ("no_meeting_scheduled", "deal_too_old")
    )


def test_an_episode_over_before_its_first_try_gets_no_task(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    tenants.save_settings(
        rt.store, tenant_id, {"tasks": {"alerts": {"no_activity": {"enabled": False}}}},
        changed_by="test", now=clock(),
    )  # fmt: skip
    _refresh(redis, tenant_id)
    episode = _episode(rt, tenant_id, "d-1002", "no_activity")
    log_a_call(crm, "d-1002", "2026-11-25T07:30:00Z")
    _refresh(redis, tenant_id, ["d-1002"])
    settings = tenants.current_settings(rt.store, tenant_id)
    ctx = Context(rt, tenant_id, crm, settings, clock())
    first_try = Effect(0, TASK, crm_tasks.task_key(episode.id), {"episode_id": episode.id}, 1,
                       clock())  # fmt: skip
    assert crm_tasks.create(ctx, first_try).result == {
        "skipped": "the alert ended before its task was made"
    }
    assert _task_of(crm, "d-1002", "Get back in touch") == []


def test_tasks_switched_off_per_alert_and_reworded(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    document = {
        "tasks": {
            "due_in_business_days": 2,
            "alerts": {
                "close_date_passed": {"enabled": False},
                "no_activity": {"subject": "Call {deal_name}", "body": "{message}"},
            },
        }
    }
    tenants.save_settings(rt.store, tenant_id, document, changed_by="test", now=clock())
    _refresh(redis, tenant_id)
    tasks = list(crm.tasks().values())
    assert not [t for t in tasks if "close date" in t["subject"]]
    [task] = [t for t in tasks if t["subject"] == "Call Globex expansion"]
    assert task["body"] == "No activity for 23 days (threshold 10)"
    assert datetime.fromisoformat(task["due"]) == datetime(2026, 11, 27, 17, 0, tzinfo=PARIS)
    with rt.store.tenant(tenant_id) as s:
        handled = [
            r.result["handled_by"] for r in s.scalars(select(OutboxEffect))
            if r.kind == "event"
        ]  # fmt: skip
    results = [h["crm_task"] for row in handled for h in row.values() if "crm_task" in h]
    assert "off" in results and "crm_task:1" in results


def test_a_grade_change_leaves_a_note_only_when_asked(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    _refresh(redis, tenant_id)
    assert _grade(rt, tenant_id, "d-1002") == "poor"  # score 36
    lower_cut = {"health": {"fair_from": 30}}
    tenants.save_settings(rt.store, tenant_id, lower_cut, changed_by="test", now=clock())
    _refresh(redis, tenant_id, ["d-1002"])
    assert _grade(rt, tenant_id, "d-1002") == "fair"
    assert crm.notes() == {} and _effects(rt, tenant_id, NOTE) == [], "off by default"

    with_notes = {**lower_cut, "notes": {"grade_changed": True}}
    tenants.save_settings(rt.store, tenant_id, with_notes, changed_by="test", now=clock())
    log_a_call(crm, "d-1002", "2026-11-25T07:40:00Z")
    _refresh(redis, tenant_id, ["d-1002"])
    assert _grade(rt, tenant_id, "d-1002") == "good"
    [note] = crm.notes().values()
    assert note["deal_id"] == "d-1002"
    lines = note["body"].splitlines()
    assert lines[0].startswith("Deal Radar: relationship health went from fair to good (score 36")
    assert lines[2] == "What moved:"
    assert any(line.startswith("- recency: ") for line in lines)
    assert "- calls: 0 → 1" in lines
    assert datetime.fromisoformat(note["at"]) == clock()

    _refresh(redis, tenant_id, ["d-1002"])
    crm_actions.run(tenant_id)
    assert len(crm.notes()) == 1 and len(crm.calls("create_note")) == 1


def _grade(rt: Runtime, tenant_id: str, deal_id: str) -> str:
    with rt.store.tenant(tenant_id) as s:
        evaluation = s.get(Evaluation, (tenant_id, deal_id))
        assert evaluation is not None
        return evaluation.grade


class _NoActions(FolderClient):
    """A CRM adapter without CrmActions (as a new CRM's is until it gets them)."""

    create_task = None  # type: ignore[assignment]


def test_a_crm_whose_adapter_makes_no_tasks_gets_no_effects(
    rt: Runtime,
    redis: Redis,
    tenant_id: str,
    crm: FolderClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(ADAPTERS, "test", _NoActions)
    _refresh(redis, tenant_id)
    assert _episodes(rt, tenant_id), "alerts were found"
    assert _effects(rt, tenant_id, TASK) == []
    with rt.store.tenant(tenant_id) as s:
        [events] = [r.result["handled_by"] for r in s.scalars(select(OutboxEffect))
                    if r.kind == "event"]  # fmt: skip
    assert {"the CRM adapter makes no tasks"} <= {h["crm_task"] for h in events.values()}


def _installed_yesterday(rt: Runtime, tenant_id: str, clock: Clock) -> None:
    """The tenant was installed yesterday, after every example deal was created."""
    with rt.store.tenant(tenant_id) as s:
        s.get(Tenant, tenant_id).created_at = clock() - timedelta(days=1)


def test_the_install_backlog_gets_no_tasks_then_new_alerts_do(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    _installed_yesterday(rt, tenant_id, clock)
    _refresh(redis, tenant_id)
    assert len(_episodes(rt, tenant_id)) > 5, "the alerts are there, on the deals' fields"
    assert crm.tasks() == {} and _effects(rt, tenant_id, TASK) == [], "not a task each"

    # A deal created after the install starts with an alert: that is news, so it gets its task.
    doc = dump_bundle(crm.pull(["d-1002"]).bundles[0])
    doc["deal"] = {**doc["deal"], "id": "d-2001", "name": "Globex phase 2",
                   "created_at": (clock() - timedelta(hours=1)).isoformat()}  # fmt: skip
    crm.put_deal(doc)
    _refresh(redis, tenant_id, ["d-2001"])
    assert _task_of(crm, "d-2001", "Bring in another contact") != []
    # An alert that starts later on a backlog deal is news too.
    clock.now += timedelta(days=40)
    _refresh(redis, tenant_id, ["d-1001"])
    assert _task_of(crm, "d-1001", "Get back in touch"), "no_activity started after the install"


def test_an_admin_may_ask_for_the_backlog_tasks(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    _installed_yesterday(rt, tenant_id, clock)
    tenants.save_settings(rt.store, tenant_id, {"tasks": {"backlog": True}}, changed_by="test",
                          now=clock())  # fmt: skip
    _refresh(redis, tenant_id)
    assert len(_task_of(crm, "d-1002", "Get back in touch")) == 1


def _owners_tried(crm: FolderClient, deal_id: str) -> list[str | None]:
    return [c.get("owner") for c in crm.calls("create_task") if c["deal"] == deal_id]


def test_a_deactivated_owners_tasks_go_to_the_fallback_owner(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    leaves_the_team(crm, "u-tom")
    document = {"tasks": {"fallback_owner": "u-claire"}}
    tenants.save_settings(rt.store, tenant_id, document, changed_by="test", now=clock())
    _refresh(redis, tenant_id)

    [task] = _task_of(crm, "d-1002", "Get back in touch")
    assert task["owner_id"] == "u-claire", "Tom left: his deal's task goes to the fallback"
    assert _owners_tried(crm, "d-1002") and set(_owners_tried(crm, "d-1002")) == {"u-claire"}
    assert {t["owner_id"] for t in crm.tasks().values() if t["deal_id"] == "d-1001"} == {
        "u-claire"
    }, "an active owner keeps her tasks"
    [effect] = [
        e for e in _effects(rt, tenant_id, TASK)
        if e.key == f"crm_task:{_episode(rt, tenant_id, 'd-1002', 'no_activity').id}"
    ]  # fmt: skip
    assert effect.result["owner_inactive"] == "u-tom"
    assert effect.result["assigned_to"] == "u-claire"


def test_without_a_fallback_a_deactivated_owners_tasks_are_made_unassigned(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient
) -> None:
    leaves_the_team(crm, "u-tom")
    _refresh(redis, tenant_id)

    [task] = _task_of(crm, "d-1002", "Get back in touch")
    assert task["owner_id"] is None
    assert all(e.status == "done" for e in _effects(rt, tenant_id, TASK)), "none fails"


def test_a_task_refused_for_an_owner_deactivated_since_the_sync_goes_to_the_fallback(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    document = {"tasks": {"fallback_owner": "u-claire"}}
    tenants.save_settings(rt.store, tenant_id, document, changed_by="test", now=clock())
    crm.add_fault("create_task", error="owner_inactive")  # Tom was deactivated meanwhile
    _refresh(redis, tenant_id, ["d-1002"])

    [task] = _task_of(crm, "d-1002", "Get back in touch")
    assert task["owner_id"] == "u-claire"
    tried = _owners_tried(crm, "d-1002")
    assert tried[:2] == ["u-tom", "u-claire"], "refused for Tom, then made for Claire"
    assert len(tried) > 3 and set(tried[2:]) == {"u-claire"}, "the deal's other tasks: no retry"
    assert {t["owner_id"] for t in crm.tasks().values()} == {"u-claire"}
    assert all(e.status == "done" for e in _effects(rt, tenant_id, TASK))
    with rt.store.tenant(tenant_id) as s:
        assert s.get(UserRow, (tenant_id, "u-tom")).active is False, "remembered"

    _refresh(redis, tenant_id, ["d-1004"])  # the next sync says Tom is active after all
    with rt.store.tenant(tenant_id) as s:
        assert s.get(UserRow, (tenant_id, "u-tom")).active is True
    assert set(_owners_tried(crm, "d-1004")) == {"u-tom"}


def _hand_to(crm: FolderClient, deal_id: str, user_id: str, *, active: bool = True) -> None:
    """A manager gives the deal to another rep in the CRM."""
    doc = dump_bundle(crm.pull([deal_id]).bundles[0])
    doc["deal"]["owner"] = user_id
    doc["users"] = [u for u in doc["users"] if u["id"] != user_id] + [
        {"id": user_id, "name": user_id, "email": f"{user_id}@example.com", "active": active}
    ]
    crm.put_deal(doc)


def _open_tasks_of(crm: FolderClient, deal_id: str) -> list[dict[str, Any]]:
    return [t for t in crm.tasks().values() if t["deal_id"] == deal_id and t["status"] == "open"]


def test_a_deal_handed_to_another_rep_hands_its_open_tasks_over(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient
) -> None:
    _refresh(redis, tenant_id)
    assert {t["owner_id"] for t in _open_tasks_of(crm, "d-1002")} == {"u-tom"}
    others = {i: t for i, t in crm.tasks().items() if t["deal_id"] != "d-1002"}

    _hand_to(crm, "d-1002", "u-claire")
    _refresh(redis, tenant_id, ["d-1002"])

    tasks = _open_tasks_of(crm, "d-1002")
    assert len(tasks) > 1 and {t["owner_id"] for t in tasks} == {"u-claire"}
    assert {i: t for i, t in crm.tasks().items() if t["deal_id"] != "d-1002"} == others
    episode = _episode(rt, tenant_id, "d-1002", "no_activity")
    assert episode.crm_refs["task_for_owner"] == "u-claire"
    handed = len(crm.calls("reassign_task"))
    assert handed == len(tasks)

    _refresh(redis, tenant_id, ["d-1002"])  # nothing changed: nothing more asked of the CRM
    crm_actions.run(tenant_id)
    assert len(crm.calls("reassign_task")) == handed

    _hand_to(crm, "d-1002", "u-tom")  # and back to Tom: the same tasks follow again
    _refresh(redis, tenant_id, ["d-1002"])
    assert {t["owner_id"] for t in _open_tasks_of(crm, "d-1002")} == {"u-tom"}
    assert len(crm.calls("reassign_task")) == 2 * handed


def test_a_completed_task_stays_with_the_rep_who_had_it(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient
) -> None:
    _refresh(redis, tenant_id)
    log_a_call(crm, "d-1002", "2026-11-25T07:30:00Z")  # ends no_activity: its task completed
    _refresh(redis, tenant_id, ["d-1002"])
    [done] = [t for t in _task_of(crm, "d-1002", "Get back in touch")]
    assert done["status"] == "completed"

    _hand_to(crm, "d-1002", "u-claire")
    _refresh(redis, tenant_id, ["d-1002"])
    [done] = [t for t in _task_of(crm, "d-1002", "Get back in touch")]
    assert done["owner_id"] == "u-tom"
    assert {t["owner_id"] for t in _open_tasks_of(crm, "d-1002")} == {"u-claire"}


def test_a_deal_handed_to_a_deactivated_rep_hands_its_tasks_to_the_fallback_or_keeps_them(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    _refresh(redis, tenant_id)
    _hand_to(crm, "d-1002", "u-gone", active=False)
    _refresh(redis, tenant_id, ["d-1002"])
    assert {t["owner_id"] for t in _open_tasks_of(crm, "d-1002")} == {"u-tom"}, (
        "nobody active to take them: better with Tom than with nobody"
    )
    assert all(e.status == "done" for e in _effects(rt, tenant_id, TASK_OWNER))

    document = {"tasks": {"fallback_owner": "u-claire"}}
    tenants.save_settings(rt.store, tenant_id, document, changed_by="test", now=clock())
    _hand_to(crm, "d-1002", "u-left", active=False)
    _refresh(redis, tenant_id, ["d-1002"])
    assert {t["owner_id"] for t in _open_tasks_of(crm, "d-1002")} == {"u-claire"}


def test_a_task_whose_first_answer_was_lost_follows_the_deal_handed_over_meanwhile(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    """The CRM made the task for Tom but its answer was lost; before the retry found it, the
    deal went to Claire. The retry finds Tom's task: it must still reach Claire."""
    crm.add_fault("create_task", error="transient", after=True)
    _refresh(redis, tenant_id, ["d-1002"])
    [lost] = [t for t in crm.tasks().values() if t["deal_id"] == "d-1002" and t["key"] in {
        e.key for e in _effects(rt, tenant_id, TASK) if e.status == "pending"}]  # fmt: skip
    assert lost["owner_id"] == "u-tom"

    _hand_to(crm, "d-1002", "u-claire")
    _refresh(redis, tenant_id, ["d-1002"])
    _after_stale(rt, clock, BACKOFF_CAP)
    _after_stale(rt, clock, 0)

    assert all(e.status == "done" for e in _effects(rt, tenant_id, TASK))
    assert {t["owner_id"] for t in _open_tasks_of(crm, "d-1002")} == {"u-claire"}


def test_done_write_backs_and_event_batches_are_purged_after_30_days_and_task_keys_stay(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    """Every evaluated batch whose fields changed leaves an outbox row: kept a month, then
    deleted, so the outbox does not grow for good. The keys that keep a task from being made
    twice stay, and a run afterwards makes no second task."""
    _refresh(redis, tenant_id)
    kinds = {e.kind for e in _effects_all(rt, tenant_id)}
    assert {"writeback", "event", TASK} <= kinds
    tasks = crm.tasks()

    clock.now += timedelta(days=29)
    purge.run()
    assert {e.kind for e in _effects_all(rt, tenant_id)} == kinds, "within the month: kept"
    clock.now += timedelta(days=2)
    purge.run()
    left = {e.kind for e in _effects_all(rt, tenant_id)}
    assert "writeback" not in left and "event" not in left
    assert TASK in left
    with rt.store.tenant(tenant_id) as s:  # the same tasks proposed again: their keys refuse
        rows = [(e.key, e.kind, dict(e.payload)) for e in s.scalars(select(OutboxEffect))]
    assert propose(tenant_id, [r for r in rows if r[1] == TASK]) == 0
    run_jobs(redis)
    assert crm.tasks() == tasks


def _effects_all(rt: Runtime, tenant_id: str) -> list[OutboxEffect]:
    with rt.store.tenant(tenant_id) as s:
        rows = list(s.scalars(select(OutboxEffect)))
        s.expunge_all()
        return rows
