"""A CRM task for the deal's owner when an alert episode starts, completed when it ends.

Handlers (registered in jobs/actions.py): `alert.started` proposes the effect `crm_task:<episode
id>` if the tenant wants a task for that alert (`tasks.alerts.<code>.enabled`); `alert.ended`
proposes `crm_task_done:<episode id>` if a task was proposed for the episode. The runner
(jobs/crm_actions.py) then calls `create` and `complete` below.

Once per episode, whatever the retries: the effect's key is unique in the outbox, the task's id
is recorded on the episode (`crm_refs["task"]`) in the transaction that completes the effect,
and the adapter's create is idempotent by that same key, so a worker killed between the CRM's
answer and the commit finds the task it made instead of making another.

A deal whose owner the CRM deactivated (a rep who left; the CRM keeps their deals under their
name until someone reassigns them) gets its task assigned to `tasks.fallback_owner`, or to
nobody when none is set or that user is deactivated too: the task is still made, where a
manager sees it. Deal Radar knows a user is deactivated from the last sync (`users.active`), or
learns it when the CRM refuses the task (OwnerInactive), and remembers it until the next sync.

An episode that ended before its task was first tried (the CRM was down all along) gets no
task: the alert is over. One that ended after a try that may have reached the CRM gets its task
(found again, or made) and then completed, so no open task outlives its alert.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from adapters.errors import OwnerInactive
from connector.store import tenants
from connector.store.models import AlertEpisode, DealRow, OutboxEffect, UserRow
from connector.store.snapshots import inactive_users
from connector.store.times import from_db
from engine.actions import assignees, plan_task
from jobs.crm_effects import TASK, TASK_DONE, Context, Effect, Outcome, crm_can_act, propose
from jobs.runtime import current

log = logging.getLogger(__name__)

RECHECK_SECONDS = 5.0
"""How soon a completion waiting for its task's first try looks again."""


def task_key(episode_id: int) -> str:
    return f"{TASK}:{episode_id}"


def done_key(episode_id: int) -> str:
    return f"{TASK_DONE}:{episode_id}"


# -- handlers (jobs.actions.HANDLERS) ----------------------------------------------------------


def on_started(tenant_id: str, event: dict[str, Any]) -> str:
    settings = tenants.current_settings(current().store, tenant_id)
    if not settings.task_for(event["code"])["enabled"]:
        return "off"
    if event.get("backlog") and not settings.document["tasks"]["backlog"]:
        return "backlog: the alert was there before the install (tasks.backlog is off)"
    if not crm_can_act(tenant_id):
        return "the CRM adapter makes no tasks"
    episode_id = int(event["episode_id"])
    key = task_key(episode_id)
    payload = {"episode_id": episode_id, "deal_id": event["deal_id"], "code": event["code"]}
    propose(tenant_id, [(key, TASK, payload)])
    return key


def on_ended(tenant_id: str, event: dict[str, Any]) -> str:
    """Whether tasks are still on or not: a task made while they were is closed all the same."""
    rt = current()
    episode_id = int(event["episode_id"])
    with rt.store.tenant(tenant_id) as s:
        proposed = s.scalar(select(OutboxEffect.id).where(OutboxEffect.key == task_key(episode_id)))
    if proposed is None:
        return "no task"
    key = done_key(episode_id)
    propose(tenant_id, [(key, TASK_DONE, {"episode_id": episode_id, "deal_id": event["deal_id"]})])
    return key


# -- effects (jobs.crm_actions) ----------------------------------------------------------------


def create(ctx: Context, effect: Effect) -> Outcome:
    episode_id = int(effect.payload["episode_id"])
    with ctx.rt.store.tenant(ctx.tenant_id) as s:
        episode = s.get(AlertEpisode, episode_id)
        if episode is None:
            return Outcome({"skipped": "the alert episode no longer exists"})
        refs = dict(episode.crm_refs or {})
        ended = episode.ended_at is not None
        code, message = episode.code, episode.message
        started_at = from_db(episode.started_at)
        deal_id = episode.deal_id
        deal = s.get(DealRow, (ctx.tenant_id, deal_id))
        deal_data = dict(deal.data) if deal is not None else None
        owner = (deal_data or {}).get("owner") or None
        candidates = assignees(
            owner, ctx.settings, inactive_users(s, owner, ctx.settings.fallback_owner)
        )
    if refs.get("task"):
        return Outcome({"task_id": refs["task"]})
    if ended and effect.attempts <= 1:
        return Outcome({"skipped": "the alert ended before its task was made"})
    if deal_data is None:
        log.info("tenant %s: deal %s is gone; no task for episode %s",
                 ctx.tenant_id, deal_id, episode_id)  # fmt: skip
        return Outcome({"skipped": "the deal is no longer in the CRM"})
    assert started_at is not None
    plan = plan_task(
        ctx.settings, code, message=message, deal_name=deal_data.get("name") or deal_id,
        deal_url=deal_data.get("url"), started_at=started_at,
    )  # fmt: skip
    if plan is None:
        return Outcome({"skipped": f"tasks are off for {code}"})
    for assignee in candidates:
        try:
            task_id = ctx.crm.create_task(
                deal_id, owner_id=assignee, subject=plan.subject, body=plan.body,
                due=plan.due, key=effect.key,
            )  # fmt: skip
            break
        except OwnerInactive as refused:
            log.info("tenant %s: the CRM refused a task for deactivated user %s on deal %s",
                     ctx.tenant_id, refused.owner_id, deal_id)  # fmt: skip
            _remember_inactive(ctx, refused.owner_id)
    else:  # unreachable: the last candidate is nobody, whom no CRM refuses as inactive
        raise RuntimeError(f"no assignee left for the task of episode {episode_id}")
    log.info("tenant %s: task %s for %s on deal %s, due %s, assigned to %s",
             ctx.tenant_id, task_id, code, deal_id, plan.due.isoformat(),
             assignee or "nobody")  # fmt: skip
    result = {"task_id": task_id, "due": plan.due.isoformat()}
    if assignee != owner:
        result |= {"owner_inactive": owner, "assigned_to": assignee}
    return Outcome(result, episode_id, {"task": task_id})


def _remember_inactive(ctx: Context, user_id: str) -> None:
    """Until the next sync reads the CRM's users again, this user counts as deactivated."""
    with ctx.rt.store.tenant(ctx.tenant_id) as s:
        row = s.get(UserRow, (ctx.tenant_id, user_id))
        if row is None:
            s.add(UserRow(tenant_id=ctx.tenant_id, crm_id=user_id, active=False))
        else:
            row.active = False


def complete(ctx: Context, effect: Effect) -> Outcome:
    episode_id = int(effect.payload["episode_id"])
    with ctx.rt.store.tenant(ctx.tenant_id) as s:
        episode = s.get(AlertEpisode, episode_id)
        refs = dict(episode.crm_refs or {}) if episode is not None else {}
        creation = s.scalar(select(OutboxEffect).where(OutboxEffect.key == task_key(episode_id)))
        waiting = creation is not None and creation.status == "pending"
        creation_due = from_db(creation.due_at) if creation is not None else None
    task_id = refs.get("task")
    if task_id is None:
        if waiting:
            # Its task is still to be made (or found again): complete it once it is.
            assert creation_due is not None
            later = max(creation_due, ctx.now) + timedelta(seconds=RECHECK_SECONDS)
            return Outcome(wait_until=later)
        return Outcome({"skipped": "no task was made for this episode"})
    if refs.get("task_completed"):
        return Outcome({"task_id": task_id})
    ctx.crm.complete_task(task_id)
    return Outcome({"task_id": task_id, "completed": True}, episode_id, {"task_completed": True})
