"""The refresh: pull deals from the CRM, store the snapshot, evaluate, record, enqueue effects.

`drain(tenant)` is what the queue runs: it takes the tenant's pending deal ids (see
connector.queues for the coalescing), locks them so no other worker refreshes them at the same
time, and refreshes those it got; busy ones go back to pending for one more refresh later.

Error policy (jobs.policy): transient CRM errors and rate limits put the deals back and retry
after a jittered exponential backoff honouring Retry-After, for as long as the outage lasts;
a revoked or forbidden token suspends the tenant with the reason (shown by
`dealradar tenants status`); deleted deals are forgotten; invalid data fails the job (listed by
`dealradar jobs failed`) and marks its events failed instead of retrying them forever. Events in
the inbox stay pending until a refresh covering all their deals has been recorded, so the
sweeper can always put back what a crash or Redis lost.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters import ADAPTERS
from adapters.errors import CrmError, InvalidRequest
from connector import queues
from connector.store import tenants, work
from connector.store.models import InboxEvent, Tenant
from connector.store.snapshots import save_bundles
from engine.model import Bundle
from jobs import crm_effects, crm_tasks, pipeline, policy
from jobs.adapters import adapter_for_tenant
from jobs.runtime import Runtime, current

log = logging.getLogger(__name__)

DRAIN_BATCH = 200
"""Deals refreshed by one job, unless the CRM's adapter says otherwise (`pull_batch`: what its
batch limits make cheapest); more pending than this are left for the next drain."""
SCHEDULER_RESOLUTION_MS = 1000


class RefreshFailed(Exception):
    """A refresh that cannot succeed by retrying; the reason is recorded where an admin sees it."""


def _attempts_key(tenant_id: str) -> str:
    return f"dealradar:attempts:{tenant_id}"


def drain(tenant_id: str) -> None:
    rt = current()
    r = rt.redis
    r.delete(queues.scheduled_key(tenant_id, "drain"))  # from now on, events schedule another
    waiting = r.pttl(queues.backoff_key(tenant_id))
    # RQ schedules to the second: a drain due a fraction early proceeds rather than spin.
    if waiting and waiting > SCHEDULER_RESOLUTION_MS:
        queues.enqueue_once(
            r, queues.REFRESH, "jobs.refresh.drain", tenant_id, what="drain", delay=waiting / 1000
        )
        return
    ids = queues.take_pending(r, tenant_id, _batch(rt, tenant_id))
    if not ids:
        return
    if r.scard(queues.pending_key(tenant_id)):
        queues.enqueue_once(r, queues.REFRESH, "jobs.refresh.drain", tenant_id, what="drain")
    locks = queues.DealLocks(r, tenant_id, rt.lock_seconds)
    taken, busy = locks.acquire(ids)
    try:
        if busy:
            queues.request_refresh(r, tenant_id, busy, window=rt.coalesce_seconds)
        if taken:
            with locks.kept():  # a pull waiting out rate limits may outlive the locks' life
                refresh(tenant_id, taken, rt)
    finally:
        locks.release()


def _batch(rt: Runtime, tenant_id: str) -> int:
    try:
        crm = tenants.get_tenant(rt.store, tenant_id).crm
    except tenants.UnknownTenant:
        return DRAIN_BATCH  # refresh() drops them with a warning
    return int(getattr(ADAPTERS.get(crm), "pull_batch", DRAIN_BATCH))


def refresh(
    tenant_id: str,
    deal_ids: Sequence[str],
    rt: Runtime | None = None,
    *,
    splits: list[int] | None = None,
) -> None:
    """Pull, store, evaluate and record these deals (the caller holds their locks). A pull the
    CRM refuses for its data is tried again in halves, so that one deal it refuses fails alone,
    not the deals coalesced with it; `splits` is what is left of the halving's budget."""
    rt = rt or current()
    try:
        tenant = tenants.get_tenant(rt.store, tenant_id)
    except tenants.UnknownTenant:
        log.warning("refresh for unknown tenant %s dropped", tenant_id)
        return
    if tenant.status != "active":
        log.info(
            "tenant %s is %s; refresh of %d deals waits", tenant_id, tenant.status, len(deal_ids)
        )
        return
    with rt.store.tenant(tenant_id) as s:
        # The events this pull answers: those stored before it began, told apart by id, not by
        # the web host's clock against this worker's.
        stored = work.newest_pending_event(s)
    try:
        pulled = adapter_for_tenant(rt, tenant).pull(deal_ids)
    except InvalidRequest as exc:
        splits = [2 * math.ceil(math.log2(len(deal_ids))) + 2] if splits is None else splits
        if len(deal_ids) > 1 and splits[0] > 0:
            splits[0] -= 1
            _in_halves(tenant_id, deal_ids, rt, splits)
        else:
            _failed(rt, tenant_id, deal_ids, exc, stored)
        return
    except CrmError as exc:
        _failed(rt, tenant_id, deal_ids, exc, stored)
        return
    settings = tenants.current_settings(rt.store, tenant_id)
    now = rt.clock()
    with rt.store.tenant(tenant_id) as s:
        save_bundles(s, tenant_id, pulled.bundles, now)
        recorded = pipeline.record(s, tenant_id, pulled.bundles, settings, now)
        events = pipeline.forget(s, tenant_id, pulled.deleted, now) if pulled.deleted else 0
        handovers = _hand_over_tasks(s, tenant, pulled.bundles, now)
        work.settle_events(s, set(deal_ids), stored, now)
    policy.forget_attempts(rt.redis, _attempts_key(tenant_id))
    log.info(
        "tenant %s: refreshed %d deals (%d deleted), %d write-backs, %d events",
        tenant_id, recorded.evaluated, len(pulled.deleted), recorded.writebacks,
        recorded.events + events,
    )  # fmt: skip
    follow_up(rt, tenant_id, recorded.writebacks, recorded.events + events)
    if handovers:
        queues.enqueue_once(
            rt.redis, queues.ACTIONS, crm_effects.RUN, tenant_id, what=crm_effects.WHAT
        )


def _hand_over_tasks(
    session: Session, tenant: Tenant, bundles: Sequence[Bundle], now: datetime
) -> int:
    """Open tasks of deals handed to another rep follow them (jobs.crm_tasks)."""
    if not bundles or not callable(getattr(ADAPTERS.get(tenant.crm), "reassign_task", None)):
        return 0
    owners = {b.deal.id: b.deal.owner or None for b in bundles}
    return crm_tasks.propose_handovers(session, tenant.id, owners, now)


def _in_halves(tenant_id: str, deal_ids: Sequence[str], rt: Runtime, splits: list[int]) -> None:
    """Each half refreshed on its own; the refusals (RefreshFailed) raised together at the end,
    once the other half had its turn."""
    middle = len(deal_ids) // 2
    refused = []
    for half in (deal_ids[:middle], deal_ids[middle:]):
        try:
            refresh(tenant_id, half, rt, splits=splits)
        except RefreshFailed as exc:
            refused.append(str(exc))
    if refused:
        raise RefreshFailed("; ".join(refused))


def follow_up(rt: Runtime, tenant_id: str, writebacks: int, events: int) -> None:
    if writebacks:
        queues.enqueue_once(
            rt.redis, queues.WRITEBACK, "jobs.writeback.flush", tenant_id, what="flush"
        )
    if events:
        queues.enqueue_once(
            rt.redis, queues.ACTIONS, "jobs.actions.dispatch", tenant_id, what="dispatch"
        )


def _failed(
    rt: Runtime, tenant_id: str, deal_ids: Sequence[str], error: CrmError, stored: int
) -> None:
    r = rt.redis
    decision = policy.decide_attempt(r, _attempts_key(tenant_id), error)
    if decision.action == "retry":
        r.set(queues.backoff_key(tenant_id), "1", px=max(1, int(decision.delay * 1000)))
        log.warning(
            "tenant %s: %s (attempt %d); retrying %d deals in %.1f s",
            tenant_id, decision.reason, decision.attempt, len(deal_ids), decision.delay,
        )  # fmt: skip
        queues.request_refresh(r, tenant_id, deal_ids, window=decision.delay)
    elif decision.action == "suspend":
        log.error("tenant %s suspended: %s", tenant_id, decision.reason)
        tenants.set_status(rt.store, tenant_id, "suspended", decision.reason, rt.clock())
    elif decision.action == "deleted":
        with rt.store.tenant(tenant_id) as s:
            events = pipeline.forget(s, tenant_id, deal_ids, rt.clock())
            # Their events are done with: left pending, the sweeper would ask again forever.
            work.settle_events(s, set(deal_ids), stored, rt.clock())
        follow_up(rt, tenant_id, 0, events)
    else:
        _fail_events(rt, tenant_id, set(deal_ids), decision.reason)
        raise RefreshFailed(f"tenant {tenant_id}: {decision.reason}") from error


def _fail_events(rt: Runtime, tenant_id: str, deal_ids: set[str], reason: str) -> None:
    with rt.store.tenant(tenant_id) as s:
        for event in s.scalars(select(InboxEvent).where(InboxEvent.status == "pending")):
            if deal_ids & set(event.deal_ids):
                event.status = "failed"
                event.last_error = reason
                event.attempts += 1
