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

A deal handed to another rep (its owner changed in the CRM) hands over its open Deal Radar tasks
too: each refresh compares the pulled owner with the one each open task was made for
(`crm_refs["task_for_owner"]`) and proposes `crm_task_owner:<episode id>:<n>:<owner>`, which
gives the task to the new owner (or to `tasks.fallback_owner` when the new owner is deactivated).
A task completed or deleted in the CRM is left alone; with nobody active to take it, the task
stays with whoever has it rather than becoming nobody's.

An alert whose tasks go to a team (`tasks.alerts.<code>.team`, a name in `tasks.teams`) gives
them round robin instead: the episode draws the team's next turn once (a counter in the
database, `task_rotations`, so that two workers never draw the same one; kept on the episode as
`crm_refs["task_turn"]`, so that a retried creation asks the same member), and the task goes to
the member whose turn it is, skipping deactivated members; with none active, to the owner as
above. A team's task stays with its member when the deal changes hands; a member who leaves
hands it to the team's next active member.

An episode that ended before its task was first tried (the CRM was down all along) gets no
task: the alert is over. One that ended after a try that may have reached the CRM gets its task
(found again, or made) and then completed, so no open task outlives its alert.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.errors import OwnerInactive
from connector.store import results, tenants, work
from connector.store.models import AlertEpisode, DealRow, OutboxEffect, TaskRotation, UserRow
from connector.store.snapshots import inactive_users
from connector.store.sql import increment, tenant_of
from connector.store.times import from_db
from engine.actions import assignees, plan_task, team_turn
from engine.settings import Settings
from jobs.crm_effects import (
    TASK,
    TASK_DONE,
    TASK_OWNER,
    Context,
    Effect,
    Outcome,
    crm_can_act,
    propose,
)
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
        if refs.get("task"):
            return Outcome({"task_id": refs["task"]})
        if episode.ended_at is not None and effect.attempts <= 1:
            return Outcome({"skipped": "the alert ended before its task was made"})
        code, deal_id = episode.code, episode.deal_id
        deal = s.get(DealRow, (ctx.tenant_id, deal_id))
        if deal is None:
            log.info("tenant %s: deal %s is gone; no task for episode %s",
                     ctx.tenant_id, deal_id, episode_id)  # fmt: skip
            return Outcome({"skipped": "the deal is no longer in the CRM"})
        deal_data = dict(deal.data)
        started_at = from_db(episode.started_at)
        assert started_at is not None
        plan = plan_task(
            ctx.settings, code, message=episode.message,
            deal_name=deal_data.get("name") or deal_id, deal_url=deal_data.get("url"),
            started_at=started_at,
        )  # fmt: skip
        if plan is None:
            return Outcome({"skipped": f"tasks are off for {code}"})
        owner = deal_data.get("owner") or None
        team = ctx.settings.team_for(code)
        members = team[1] if team else []
        inactive = inactive_users(s, owner, ctx.settings.fallback_owner, *members)
        if team and "task_turn" not in refs:
            # Drawn only now that a task is to be made, with the episode that keeps it: an
            # episode skipped above would use up a member's turn (the team's tasks would no
            # longer go round evenly), and a retried creation must ask the same member.
            refs["task_turn"] = _take_turn(s, team[0])
            episode.crm_refs = refs
    turn = team_turn(members, refs["task_turn"], inactive) if team else []
    # A team with nobody active left: the deal's owner (or the fallback) rather than nobody.
    candidates = list(dict.fromkeys([*turn, *assignees(owner, ctx.settings, inactive)]))
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
    if team and assignee in turn:
        # The team's task, not the owner's: it stays with its member when the deal changes hands.
        result |= {"team": team[0], "assigned_to": assignee}
        return Outcome(result, episode_id, {"task": task_id, "task_team": team[0],
                                            "task_assignee": assignee})  # fmt: skip
    if assignee != owner:
        result |= {"owner_inactive": owner, "assigned_to": assignee}
    refs = {"task": task_id, "task_for_owner": owner, "task_assignee": assignee}
    return Outcome(result, episode_id, refs)


def _take_turn(session: Session, team: str) -> int:
    """The next turn of a team's round robin (1 for its first task)."""
    row = {"tenant_id": tenant_of(session), "team": team}
    return increment(session, TaskRotation, row, ("tenant_id", "team"), "turns")


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
        creation_due = _creation_due(s, episode_id)
    task_id = refs.get("task")
    if task_id is None:
        if creation_due is not None:
            # Its task is still to be made (or found again): complete it once it is.
            return _after_creation(ctx, creation_due)
        return Outcome({"skipped": "no task was made for this episode"})
    if refs.get("task_completed"):
        return Outcome({"task_id": task_id})
    ctx.crm.complete_task(task_id)
    return Outcome({"task_id": task_id, "completed": True}, episode_id, {"task_completed": True})


def _creation_due(session: Session, episode_id: int) -> datetime | None:
    """When the episode's task creation is next tried, if it is still waiting to be."""
    due = session.scalar(
        select(OutboxEffect.due_at).where(
            OutboxEffect.key == task_key(episode_id), OutboxEffect.status == "pending"
        )
    )
    return from_db(due)


def _after_creation(ctx: Context, creation_due: datetime) -> Outcome:
    """Look again once the task's creation has had its try: what to do needs its task id."""
    return Outcome(wait_until=max(creation_due, ctx.now) + timedelta(seconds=RECHECK_SECONDS))


# -- a deal handed to another rep --------------------------------------------------------------


def owner_key(episode_id: int, handovers: int, owner: str | None) -> str:
    return f"{TASK_OWNER}:{episode_id}:{handovers}:{owner or ''}"


def propose_handovers(
    session: Session, tenant_id: str, owners: Mapping[str, str | None], now: datetime
) -> int:
    """Within a refresh's transaction, `owners` being the pulled deals' owners: an effect for
    each open episode whose task was made for someone else (or whose task is still being made,
    for the owner its creation read), so that the task follows the deal. How many were new."""
    made, unmade = [], {}
    for episode_id, deal_id, refs in results.open_episode_refs(session, list(owners)):
        if refs.get("task"):
            if not refs.get("task_completed") and _moved(refs, owners[deal_id]):
                made.append((episode_id, deal_id, refs))
        else:
            unmade[task_key(episode_id)] = (episode_id, deal_id, refs)
    if unmade:
        being_made = session.scalars(
            select(OutboxEffect.key).where(
                OutboxEffect.key.in_(list(unmade)), OutboxEffect.status == "pending"
            )
        )
        made += [unmade[key] for key in being_made]
    effects = [_handing(episode, deal_id, refs, owners[deal_id]) for episode, deal_id, refs in made]
    return work.propose_many(session, tenant_id, effects, now) if effects else 0


def propose_for_departed(
    session: Session, tenant_id: str, settings: Settings, now: datetime
) -> int:
    """Once the CRM's users are read (jobs.users): the open tasks still held by a user the CRM
    deactivated go elsewhere, where they are seen. A departed owner's, on their deals, go to
    `tasks.fallback_owner` (when set and active); the deal itself stays theirs until someone
    hands it over. A departed member's team tasks go to the team's next active member. How many
    were new."""
    departed = set(session.scalars(select(UserRow.crm_id).where(~UserRow.active)))
    if not departed:
        return 0
    effects = _departed_owners_tasks(session, settings, departed)
    effects += _departed_members_tasks(session, departed)
    return work.propose_many(session, tenant_id, effects, now) if effects else 0


Proposal = tuple[str, str, dict[str, Any]]


def _handing(episode_id: int, deal_id: str, refs: Mapping[str, Any], owner: str | None) -> Proposal:
    key = owner_key(episode_id, int(refs.get("task_handovers", 0)), owner)
    return key, TASK_OWNER, {"episode_id": episode_id, "deal_id": deal_id}


def _departed_owners_tasks(
    session: Session, settings: Settings, departed: set[str]
) -> list[Proposal]:
    fallback = settings.fallback_owner
    if not fallback or fallback in departed:
        return []
    owners = dict(
        session.execute(
            select(DealRow.crm_id, DealRow.owner).where(
                DealRow.status == "open", DealRow.owner.in_(sorted(departed))
            )
        ).all()
    )
    if not owners:
        return []
    return [
        _handing(episode_id, deal_id, refs, owners[deal_id])
        for episode_id, deal_id, refs in results.open_episode_refs(session, list(owners))
        if _open_task(refs) and not refs.get("task_team")
        and refs.get("task_assignee") == owners[deal_id]
    ]  # fmt: skip


def team_task_holders(session: Session) -> set[str]:
    """Who holds an open team task: read with the CRM's users whether or not the settings
    still list them (a member taken off the team as they leave keeps their tasks until then)."""
    team = AlertEpisode.crm_refs["task_team"].as_string()
    holder = AlertEpisode.crm_refs["task_assignee"].as_string()
    held = session.scalars(
        select(holder)
        .where(AlertEpisode.ended_at.is_(None), team.is_not(None), holder.is_not(None))
        .distinct()
    )
    return set(held)


def _departed_members_tasks(session: Session, departed: set[str]) -> list[Proposal]:
    assignee = AlertEpisode.crm_refs["task_assignee"].as_string()
    held = session.execute(
        select(AlertEpisode.id, AlertEpisode.deal_id, AlertEpisode.crm_refs).where(
            AlertEpisode.ended_at.is_(None), assignee.in_(sorted(departed))
        )
    )
    return [
        _handing(episode_id, deal_id, refs, None)
        for episode_id, deal_id, refs in held
        if _open_task(refs) and refs.get("task_team")
    ]


def _open_task(refs: Mapping[str, Any]) -> bool:
    return bool(refs.get("task")) and not refs.get("task_completed")


def _moved(refs: Mapping[str, Any], owner: str | None) -> bool:
    # Tasks made before owners were recorded say nothing of whom they were made for.
    return "task_for_owner" in refs and refs["task_for_owner"] != owner


def hand_over(ctx: Context, effect: Effect) -> Outcome:
    episode_id = int(effect.payload["episode_id"])
    with ctx.rt.store.tenant(ctx.tenant_id) as s:
        episode = s.get(AlertEpisode, episode_id)
        if episode is None:
            return Outcome({"skipped": "the alert episode no longer exists"})
        refs, deal_id = dict(episode.crm_refs or {}), episode.deal_id
        deal = s.get(DealRow, (ctx.tenant_id, deal_id))
        owner = (dict(deal.data) if deal is not None else {}).get("owner") or None
        team = refs.get("task_team")
        # The team that took the task, not the one its alert names now: a team renamed since
        # is another, and this one, gone, has nobody left to take it.
        members = ctx.settings.teams.get(team, []) if team else []
        holder = refs.get("task_assignee")
        inactive = inactive_users(s, owner, ctx.settings.fallback_owner, holder, *members)
        creation_due = _creation_due(s, episode_id)
    task_id = refs.get("task")
    if task_id is None and creation_due is not None:
        return _after_creation(ctx, creation_due)
    counted = {"task_handovers": int(refs.get("task_handovers", 0)) + 1}
    if task_id is None:
        return Outcome({"skipped": "no task was made for this episode"}, episode_id, counted)
    if refs.get("task_completed") or deal is None:
        return Outcome({"skipped": "the task is closed or its deal gone"}, episode_id, counted)
    if team:
        if holder not in inactive:
            return Outcome({"skipped": f"the task is team {team}'s, not the deal owner's"},
                           episode_id, counted)  # fmt: skip
        # The team's next active member; with none left (or the team gone), the owner's way.
        turn = team_turn(members, int(refs.get("task_turn", 1)), inactive)
        mine = dict(counted)
    else:
        # Asked of the CRM even when the owner seems unchanged: a task found again by a retried
        # creation was made for whoever owned the deal at the first try.
        turn, mine = [], counted | {"task_for_owner": owner}
    for assignee in [*turn, *assignees(owner, ctx.settings, inactive)[:-1]]:
        try:
            open_ = ctx.crm.reassign_task(task_id, assignee)
        except OwnerInactive as refused:
            log.info("tenant %s: the CRM refused task %s for deactivated user %s",
                     ctx.tenant_id, task_id, refused.owner_id)  # fmt: skip
            _remember_inactive(ctx, refused.owner_id)
            continue
        if not open_:  # nothing of ours left open for this episode: nothing more to do
            return Outcome({"skipped": "the task was completed or deleted in the CRM"},
                           episode_id, mine | {"task_completed": True})  # fmt: skip
        log.info("tenant %s: task %s handed to %s with deal %s",
                 ctx.tenant_id, task_id, assignee, deal_id)  # fmt: skip
        mine["task_assignee"] = assignee
        if team and assignee not in turn:  # the owner's task from now on
            mine |= {"task_team": None, "task_for_owner": owner}
        return Outcome({"task_id": task_id, "assigned_to": assignee}, episode_id, mine)
    # Nobody active to take it: better with its previous holder than with nobody.
    return Outcome({"skipped": f"no active user to hand task {task_id} to"}, episode_id, mine)
