"""Do a tenant's pending CRM tasks and notes (jobs/crm_effects.py), each once, in order.

`run(tenant)` takes the tenant's due effects oldest first, under a per-tenant lock (two runs at
once could both miss a task the other is making), and for each: counts the attempt in the
database, calls its function (jobs/crm_tasks.py, jobs/crm_notes.py), and records the outcome
and completes the row in one transaction. It then schedules itself for the next effect due.

Error policy (jobs.policy): a rate limit or a transient error leaves the effect pending with a
jittered backoff (Retry-After honoured) and its reason in `last_error`, retried for as long as
the outage lasts, never dropped; a rate limit or a token the CRM refuses also ends the run and
holds back every pending effect of the tenant until that retry (the account is refused, not the
effect).
A deleted deal (NotFound) completes the effect with the reason, logged. A revoked token, or an
expired one that refreshing did not cure three times running, suspends the tenant (`dealradar
tenants status` says why). Invalid data marks the effect
`failed` with the reason and the run goes on with the next.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import cast

from redis.exceptions import LockNotOwnedError, RedisError
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError

from adapters.base import CrmActions
from adapters.errors import AuthExpired, CrmError, RateLimited
from connector import queues
from connector.store import tenants, work
from connector.store.models import AlertEpisode, OutboxEffect
from connector.store.times import from_db, to_db
from jobs import crm_notes, crm_tasks, policy
from jobs.adapters import adapter_for_tenant
from jobs.crm_effects import (
    KINDS,
    NOTE,
    RUN,
    TASK,
    TASK_DONE,
    TASK_OWNER,
    WHAT,
    Context,
    Effect,
    Outcome,
)
from jobs.runtime import current

log = logging.getLogger(__name__)

BATCH = 50
"""Effects taken by one run; more are left for the next, enqueued at once."""
TIME_BUDGET = timedelta(seconds=30)
"""A run takes no new effect after this long (jobs time out at 60 s)."""
BUSY_DELAY = 5.0
"""Seconds before trying again when another run holds the tenant's lock."""

EFFECTS: dict[str, Callable[[Context, Effect], Outcome]] = {
    TASK: crm_tasks.create,
    TASK_DONE: crm_tasks.complete,
    TASK_OWNER: crm_tasks.hand_over,
    NOTE: crm_notes.create,
}
"""Effect kind -> what does it."""


def run(tenant_id: str) -> None:
    rt = current()
    queues.runs_started(rt.redis, tenant_id, WHAT)
    lock = rt.redis.lock(
        f"dealradar:lock:{WHAT}:{tenant_id}", timeout=rt.lock_seconds, blocking=False
    )
    if not lock.acquire():
        queues.enqueue_once(rt.redis, queues.ACTIONS, RUN, tenant_id, what=WHAT, delay=BUSY_DELAY)
        return
    try:
        _run(tenant_id)
    finally:
        try:
            lock.release()
        except LockNotOwnedError:
            # Held past lock_seconds, which a run that stops taking effects after TIME_BUDGET
            # only does when a CRM call stalled; a run may have started meanwhile.
            log.warning("tenant %s: CRM actions ran past their lock", tenant_id)


def _run(tenant_id: str) -> None:
    rt = current()
    try:
        tenant = tenants.get_tenant(rt.store, tenant_id)
    except tenants.UnknownTenant:
        log.warning("CRM actions for unknown tenant %s dropped", tenant_id)
        return
    if tenant.status != "active":
        log.info("tenant %s is %s; its CRM actions wait", tenant_id, tenant.status)
        return
    started = rt.clock()
    effects = _due(tenant_id, started)
    if not effects:
        _schedule_next(tenant_id)
        return
    adapter = adapter_for_tenant(rt, tenant)
    if not callable(getattr(adapter, "create_task", None)):
        _fail_all(tenant_id, effects, f"the {tenant.crm} adapter cannot make CRM tasks or notes")
        return
    crm = cast(CrmActions, adapter)
    settings = tenants.current_settings(rt.store, tenant_id)
    done = 0
    for effect in effects:
        if rt.clock() - started > TIME_BUDGET:
            break
        ctx = Context(rt, tenant_id, crm, settings, rt.clock())
        if not _attempt(ctx, effect):
            return
        done += 1
    log.info("tenant %s: %d CRM actions run", tenant_id, done)
    _schedule_next(tenant_id)


def _due(tenant_id: str, now: datetime) -> list[Effect]:
    rt = current()
    with rt.store.tenant(tenant_id) as s:
        rows = s.scalars(
            select(OutboxEffect)
            .where(
                OutboxEffect.kind.in_(KINDS),
                OutboxEffect.status == "pending",
                OutboxEffect.due_at <= to_db(now),
            )
            .order_by(OutboxEffect.id)
            .limit(BATCH)
        )
        return [
            Effect(r.id, r.kind, r.key, dict(r.payload), r.attempts + 1, _aware(r.created_at))
            for r in rows
        ]


def _attempt(ctx: Context, effect: Effect) -> bool:
    """Do one effect; False when the run must stop (the account refused, tenant suspended)."""
    rt = ctx.rt
    # Counted before the call: a worker killed during it leaves the count behind, so the next
    # try knows the CRM may have seen this one (crm_tasks.create relies on it).
    with rt.store.tenant(ctx.tenant_id) as s:
        s.execute(
            update(OutboxEffect)
            .where(OutboxEffect.id == effect.id)
            .values(attempts=OutboxEffect.attempts + 1)
        )
    try:
        outcome = EFFECTS[effect.kind](ctx, effect)
    except CrmError as exc:
        return _failed(ctx, effect, exc)
    except (SQLAlchemyError, RedisError):
        raise  # our own store or queue: the whole run is tried again
    except Exception as exc:
        # This effect's own fault (a setting the CRM cannot take, a bug): recorded on it, so
        # that the effects behind it, retried first in id order, are not held back for good.
        log.exception("tenant %s: %s %s failed", ctx.tenant_id, effect.kind, effect.key)
        _mark_failed(ctx.tenant_id, [effect.id],
                     f"{effect.kind} {effect.key}: {type(exc).__name__}: {exc}")  # fmt: skip
        return True
    _record(ctx, effect, outcome)
    policy.forget_attempts(rt.redis, _auth_failures_key(ctx.tenant_id))
    return True


def _auth_failures_key(tenant_id: str) -> str:
    return f"dealradar:attempts:{WHAT}:auth:{tenant_id}"


def _record(ctx: Context, effect: Effect, outcome: Outcome) -> None:
    """The outcome and the row's completion in one transaction."""
    with ctx.rt.store.tenant(ctx.tenant_id) as s:
        if outcome.wait_until is not None:
            # Waiting is not trying: the claim is given back, so that the backoff of a later
            # failure counts only real tries.
            s.execute(
                update(OutboxEffect)
                .where(OutboxEffect.id == effect.id)
                .values(due_at=to_db(outcome.wait_until), attempts=OutboxEffect.attempts - 1)
            )
            return
        if outcome.refs and outcome.episode_id is not None:
            episode = s.get(AlertEpisode, outcome.episode_id)
            if episode is not None:
                episode.crm_refs = {**(episode.crm_refs or {}), **outcome.refs}
        work.complete(s, [effect.id], ctx.rt.clock(), outcome.result)


def _failed(ctx: Context, effect: Effect, error: CrmError) -> bool:
    rt, tenant_id = ctx.rt, ctx.tenant_id
    if isinstance(error, AuthExpired):
        # A token refreshing did not cure is the tenant's, not the effect's: counted in a run
        # per tenant (reset by any success), so that other errors never add up to a suspension.
        decision = policy.decide_attempt(rt.redis, _auth_failures_key(tenant_id), error)
    else:
        decision = policy.decide(error, effect.attempts)
    reason = f"{effect.kind} {effect.key}: {decision.reason}"
    if decision.action == "retry":
        retry_after = error.retry_after if isinstance(error, RateLimited) else None
        delay = decision.delay or policy.backoff(effect.attempts, retry_after)
        with rt.store.tenant(tenant_id) as s:
            s.execute(
                update(OutboxEffect)
                .where(OutboxEffect.id == effect.id)
                .values(due_at=to_db(rt.clock() + timedelta(seconds=delay)), last_error=reason)
            )
        log.warning("tenant %s: %s (attempt %d); retrying in %.1f s",
                    tenant_id, reason, effect.attempts, delay)  # fmt: skip
        if isinstance(error, (RateLimited, AuthExpired)):
            # The whole account is being refused: no other effect goes before this retry,
            # whichever run comes first.
            retry_at = to_db(rt.clock() + timedelta(seconds=delay))
            with rt.store.tenant(tenant_id) as s:
                s.execute(
                    update(OutboxEffect)
                    .where(
                        OutboxEffect.kind.in_(KINDS),
                        OutboxEffect.status == "pending",
                        OutboxEffect.due_at < retry_at,
                    )
                    .values(due_at=retry_at)
                )
            _schedule_next(tenant_id)
            return False
        return True
    if decision.action == "deleted":
        log.info("tenant %s: %s; nothing to do", tenant_id, reason)
        with rt.store.tenant(tenant_id) as s:
            work.complete(s, [effect.id], rt.clock(), {"skipped": decision.reason})
        return True
    if decision.action == "suspend":
        log.error("tenant %s suspended: %s", tenant_id, decision.reason)
        tenants.set_status(rt.store, tenant_id, "suspended", decision.reason, rt.clock())
        return False
    log.error("tenant %s: %s; not retried", tenant_id, reason)
    _mark_failed(tenant_id, [effect.id], reason)
    return True


def _fail_all(tenant_id: str, effects: list[Effect], reason: str) -> None:
    log.error("tenant %s: %s; %d CRM actions failed", tenant_id, reason, len(effects))
    _mark_failed(tenant_id, [e.id for e in effects], reason)


def _mark_failed(tenant_id: str, ids: list[int], reason: str) -> None:
    rt = current()
    with rt.store.tenant(tenant_id) as s:
        s.execute(
            update(OutboxEffect)
            .where(OutboxEffect.id.in_(ids))
            .values(last_error=reason, **work.failed_at(rt.clock()))
        )


def _schedule_next(tenant_id: str) -> None:
    """A run when the next pending effect comes due (now, if some are due already)."""
    rt = current()
    with rt.store.tenant(tenant_id) as s:
        next_due = s.scalar(
            select(func.min(OutboxEffect.due_at)).where(
                OutboxEffect.kind.in_(KINDS), OutboxEffect.status == "pending"
            )
        )
    if next_due is None:
        return
    delay = max(0.0, (_aware(next_due) - rt.clock()).total_seconds())
    # A retry waits under a mark of its own: an effect proposed meanwhile still gets a run at
    # once rather than after the longest backoff.
    queues.enqueue_now_or_later(rt.redis, queues.ACTIONS, RUN, tenant_id, what=WHAT, delay=delay)


def _aware(moment: datetime) -> datetime:
    aware = from_db(moment)
    assert aware is not None
    return aware
