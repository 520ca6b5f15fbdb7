"""Every minute, put back on the queues whatever the database says is still pending.

Events in the inbox and effects in the outbox that are still pending after `stale_seconds`
were lost somewhere (Redis restarted, an enqueue failed after the commit, a worker died
mid-job); the sweeper requests them again. Requests are coalesced and idempotent, so
sweeping work that is merely slow costs nothing but a few Redis calls. Suspended tenants are
skipped: their work waits for an admin, and `dealradar tenants status` shows it.

A daily sweep that stopped moving (its chunk job failed or was lost) is resumed from where its
committed batches end (jobs.sweep.resume_stalled); an install's setup whose row stopped moving
(its job killed, timed out, or its retry lost with Redis) is requested again.

Events that named no deal the snapshot knew (a contact not yet pulled, a call just logged) are
kept `unresolved`; for each tenant with such events the sweeper enqueues `resolve(tenant)`,
which asks the tenant's adapter for their deals (HubSpot: associations v4), requests the refresh
of those deals and makes the events pending like any other, or done when they concern no deal.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta

from sqlalchemy import select

from adapters.errors import CrmError
from connector import queues
from connector.store import tenants
from connector.store.models import InboxEvent, OutboxEffect, SetupRun, Tenant
from jobs import crm_effects, digest, hooks, notify, pipeline, policy, sweep
from jobs.adapters import adapter_for_tenant
from jobs.runtime import current

log = logging.getLogger(__name__)

RESOLVE_BATCH = 500
"""Unresolved events placed by one resolve job; more wait for the next one."""
SETUP_STALLED = timedelta(seconds=queues.SETUP_TIMEOUT + 300)
"""A setup whose row has not moved for longer than its job may run has no job left: a live one
records every page, and a retry waits at most policy.BACKOFF_CAP."""

_FOLLOW_UPS = {
    pipeline.WRITEBACK: (queues.WRITEBACK, "jobs.writeback.flush", "flush"),
    pipeline.EVENT: (queues.ACTIONS, "jobs.actions.dispatch", "dispatch"),
    hooks.DELIVERY: (queues.ACTIONS, "jobs.hooks.deliver", hooks.DELIVERY),
    notify.MAIL: (queues.ACTIONS, "jobs.notify.send", notify.SEND),
    notify.SLACK: (queues.ACTIONS, "jobs.notify.send", notify.SEND),
    digest.DIGEST: (queues.ACTIONS, "jobs.digest.run", digest.DIGEST),
    **{kind: (queues.ACTIONS, crm_effects.RUN, crm_effects.WHAT) for kind in crm_effects.KINDS},
}


def run() -> dict[str, int]:
    rt = current()
    now = rt.clock()
    cutoff = now - timedelta(seconds=rt.stale_seconds)
    deals: dict[str, set[str]] = defaultdict(set)
    effects: set[tuple[str, str]] = set()
    with rt.store.all_tenants("the sweeper re-enqueues every tenant's pending work") as s:
        for tenant_id, deal_ids in s.execute(
            select(InboxEvent.tenant_id, InboxEvent.deal_ids)
            .join(Tenant, Tenant.id == InboxEvent.tenant_id)
            .where(
                InboxEvent.status == "pending",
                InboxEvent.received_at <= cutoff,
                Tenant.status == "active",
            )
        ):
            deals[tenant_id].update(deal_ids)
        for tenant_id, kind in s.execute(
            select(OutboxEffect.tenant_id, OutboxEffect.kind)
            .join(Tenant, Tenant.id == OutboxEffect.tenant_id)
            .where(
                OutboxEffect.status == "pending",
                OutboxEffect.due_at <= cutoff,
                Tenant.status == "active",
            )
            .distinct()
        ):
            effects.add((tenant_id, kind))
        effects |= {(tenant_id, hooks.DELIVERY) for tenant_id in hooks.due_tenants(s, cutoff)}
        unresolved = set(
            s.scalars(
                select(InboxEvent.tenant_id)
                .join(Tenant, Tenant.id == InboxEvent.tenant_id)
                .where(InboxEvent.status == "unresolved", Tenant.status == "active")
                .distinct()
            )
        )
        stalled_setups = list(
            s.scalars(
                select(SetupRun.tenant_id)
                .join(Tenant, Tenant.id == SetupRun.tenant_id)
                .where(
                    SetupRun.status.in_(("provisioning", "syncing")),
                    SetupRun.updated_at <= now - SETUP_STALLED,
                    Tenant.status == "active",
                )
            )
        )
    for tenant_id in stalled_setups:
        # Its job is gone (killed, timed out, its retry lost with Redis): the listing goes on
        # from its last checkpointed page.
        if queues.request_setup(rt.redis, tenant_id):
            log.warning("sweeper: tenant %s's setup stopped moving; requested again", tenant_id)
    for tenant_id in unresolved:
        queues.enqueue_once(rt.redis, queues.EVENTS, "jobs.sweeper.resolve", tenant_id,
                            what="resolve")  # fmt: skip
    for tenant_id, ids in list(deals.items()):
        # A locked deal is being refreshed right now (or its dead worker's lock is running
        # out): asking again would only cause one more pull.
        free = queues.unlocked(rt.redis, tenant_id, sorted(ids))
        deals[tenant_id] = set(free)
        queues.request_refresh(rt.redis, tenant_id, free, window=rt.coalesce_seconds)
    for tenant_id, kind in effects:
        if kind in _FOLLOW_UPS:
            name, func, what = _FOLLOW_UPS[kind]
            queues.enqueue_once(rt.redis, name, func, tenant_id, what=what)
    sweeps = sweep.resume_stalled()
    if deals or effects or unresolved:
        log.info(
            "sweeper: re-requested %d deals of %d tenants, %d pending effect kinds, "
            "%d tenants with unresolved events",
            sum(len(v) for v in deals.values()), len(deals), len(effects), len(unresolved),
        )  # fmt: skip
    return {
        "deals": sum(len(v) for v in deals.values()),
        "effects": len(effects),
        "sweeps": sweeps,
        "setups": len(stalled_setups),
    }


def resolve(tenant_id: str) -> int:
    """Place the tenant's unresolved events on their deals; returns how many were placed."""
    rt = current()
    rt.redis.delete(queues.scheduled_key(tenant_id, "resolve"))
    tenant = tenants.get_tenant(rt.store, tenant_id)
    if tenant.status != "active":
        return 0
    with rt.store.tenant(tenant_id) as s:
        rows = [
            (row.id, row.body)
            for row in s.scalars(
                select(InboxEvent)
                .where(InboxEvent.status == "unresolved")
                .order_by(InboxEvent.id)
                .limit(RESOLVE_BATCH)
            )
        ]
    if not rows:
        return 0
    adapter = adapter_for_tenant(rt, tenant)
    finder = getattr(adapter, "deals_for_events", None)
    try:
        found = finder([body for _, body in rows]) if finder else [set() for _ in rows]
    except CrmError as exc:
        decision = policy.decide(exc, 1)
        if decision.action == "suspend":
            tenants.set_status(rt.store, tenant_id, "suspended", decision.reason, rt.clock())
        log.warning(
            "tenant %s: %d unresolved events wait (%s)", tenant_id, len(rows), decision.reason
        )
        return 0
    now = rt.clock()
    deals: set[str] = set()
    placed = 0
    with rt.store.tenant(tenant_id) as s:
        for (row_id, _), deal_ids in zip(rows, found, strict=True):
            event = s.get(InboxEvent, row_id)
            if event is None or event.status != "unresolved":
                continue
            event.deal_ids = sorted(deal_ids)
            if deal_ids:
                event.status = "pending"  # settled by the refresh of its deals, like any other
                placed += 1
                deals |= deal_ids
            else:
                event.status = "done"
                event.processed_at = now
                event.last_error = "concerns no deal"
    queues.request_refresh(rt.redis, tenant_id, sorted(deals), window=rt.coalesce_seconds)
    if len(rows) == RESOLVE_BATCH:
        queues.enqueue_once(rt.redis, queues.EVENTS, "jobs.sweeper.resolve", tenant_id,
                            what="resolve")  # fmt: skip
    log.info(
        "tenant %s: %d of %d unresolved events placed on %d deals",
        tenant_id, placed, len(rows), len(deals),
    )  # fmt: skip
    return placed
