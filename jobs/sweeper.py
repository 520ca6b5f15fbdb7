"""Every minute, put back on the queues whatever the database says is still pending.

Events in the inbox and effects in the outbox that are still pending after `stale_seconds`
were lost somewhere (Redis restarted, an enqueue failed after the commit, a worker died
mid-job); the sweeper requests them again. Requests are coalesced and idempotent, so
sweeping work that is merely slow costs nothing but a few Redis calls. Suspended tenants are
skipped: their work waits for an admin, and `dealradar tenants status` shows it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta

from sqlalchemy import select

from connector import queues
from connector.store.models import InboxEvent, OutboxEffect, Tenant
from jobs import pipeline
from jobs.runtime import current

log = logging.getLogger(__name__)

_FOLLOW_UPS = {
    pipeline.WRITEBACK: (queues.WRITEBACK, "jobs.writeback.flush", "flush"),
    pipeline.EVENT: (queues.ACTIONS, "jobs.actions.dispatch", "dispatch"),
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
    if deals or effects:
        log.info(
            "sweeper: re-requested %d deals of %d tenants, %d pending effect kinds",
            sum(len(v) for v in deals.values()), len(deals), len(effects),
        )  # fmt: skip
    return {"deals": sum(len(v) for v in deals.values()), "effects": len(effects)}
