"""What the cron process starts every minute: daily sweeps at each tenant's local hour, and
incremental polling of the CRMs that send no webhooks.

`tick()` is cheap and safe to run twice: a sweep is started at most once per tenant and local
day (the sweep_runs row decides), and a poll at most once per interval (a Redis mark with that
lifetime decides). That is what keeps a second cron process, or a tick run twice, from doubling
any scheduled work.

`poll(tenant)` pages through the deals changed since the tenant's cursor, requests their
refresh, and checkpoints the cursor after every page; the cursor never moves past the moment the
poll started, less the time the CRM's search may take to show a change (the adapter's
`index_lag_seconds`), so a change made during the poll or indexed late is seen by the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from adapters import ADAPTERS
from adapters.base import Adapter
from adapters.errors import CrmError
from connector import queues
from connector.store import tenants
from connector.store.models import InboxEvent, SweepRun, SyncCursor, Tenant
from connector.store.times import from_db
from jobs import budget, policy
from jobs.adapters import adapter_for_tenant
from jobs.runtime import current

log = logging.getLogger(__name__)

DEALS_CURSOR = "deals"
POLL_PAGES = 50
"""Pages read by one poll job; a backlog larger than this continues at the next poll."""


def _needs_polling(crm: str) -> bool:
    factory = ADAPTERS.get(crm)
    return bool(getattr(factory, "needs_polling", False))


def tick() -> dict[str, int]:
    rt = current()
    now = rt.clock()
    with rt.store.global_session() as s:
        active = [(t.id, t.crm, t.timezone) for t in s.scalars(
            select(Tenant).where(Tenant.status == "active")
        )]  # fmt: skip
    sweeps = polls = 0
    for tenant_id, crm, zone in active:
        settings = tenants.current_settings(rt.store, tenant_id)
        local = now.astimezone(ZoneInfo(settings.timezone or zone))
        if local.hour >= settings.schedule["sweep_hour"] and not _swept(tenant_id, local):
            queues.queue(rt.redis, queues.SWEEP).enqueue(
                "jobs.sweep.start", tenant_id, local.date().isoformat()
            )
            sweeps += 1
        if _needs_polling(crm):
            interval = settings.schedule["poll_minutes"] * 60
            polls += queues.enqueue_once(
                rt.redis, queues.EVENTS, "jobs.schedule.poll", tenant_id, what="poll", hold=interval
            )
    return {"tenants": len(active), "sweeps": sweeps, "polls": polls}


def _swept(tenant_id: str, local: datetime) -> bool:
    rt = current()
    with rt.store.tenant(tenant_id) as s:
        return s.get(SweepRun, (tenant_id, local.date())) is not None


def poll(tenant_id: str) -> int:
    """Request the refresh of every deal changed since the cursor; returns how many.

    Skipped while the tenant's API usage is past its share (jobs/budget.py), and, for a CRM
    whose accounts may push changes or not (`push_optional`: Salesforce's Outbound Messages
    and Flows), while pushes arrive: then the cursor moves to the poll's start, so polling
    resumes from there once pushes stop."""
    rt = current()
    tenant = tenants.get_tenant(rt.store, tenant_id)
    if tenant.status != "active":
        return 0
    adapter = adapter_for_tenant(rt, tenant)
    why = budget.paused(rt, tenant_id, lambda: adapter)
    if why is not None:
        log.info("poll of tenant %s skipped: %s", tenant_id, why)
        return 0
    if getattr(adapter, "push_optional", False) and _pushing(tenant_id):
        horizon = rt.clock().timestamp() - float(getattr(adapter, "index_lag_seconds", 0.0))
        _checkpoint(tenant_id, str(int(horizon * 1000)))
        log.debug("poll of tenant %s skipped: its CRM pushes changes", tenant_id)
        return 0
    progress = Progress()
    try:
        follow_changes(tenant_id, adapter, progress, pages=POLL_PAGES)
    except CrmError as exc:
        log.warning("poll of tenant %s stopped at cursor %s: %s", tenant_id, progress.cursor, exc)
        decision = policy.decide(exc, 1)
        if decision.action == "suspend":  # a revoked grant: polling again cannot help
            tenants.set_status(rt.store, tenant_id, "suspended", decision.reason, rt.clock())
    return progress.requested


PUSH_FRESH = timedelta(hours=6)
"""An account that pushed a change this recently pushes: polling it would read again what its
pushes already brought. Past it (a quiet day, or pushes that stopped) polling resumes."""


def _pushing(tenant_id: str) -> bool:
    rt = current()
    with rt.store.tenant(tenant_id) as s:
        newest = s.scalar(select(func.max(InboxEvent.received_at)))
    return newest is not None and rt.clock() - from_db(newest) < PUSH_FRESH


@dataclass
class Progress:
    """How far `follow_changes` got: kept up to date page by page, also when it raises."""

    requested: int = 0
    pages: int = 0
    cursor: str | None = None
    more: bool = True


def follow_changes(
    tenant_id: str,
    adapter: Adapter,
    progress: Progress,
    *,
    pages: int,
    on_page: Callable[[Progress], None] | None = None,
) -> Progress:
    """Up to `pages` pages of the deals changed since the tenant's cursor: request their
    refresh and checkpoint the cursor after each page, never past this call's start less the
    adapter's index lag, so that a change the CRM's search shows late is found by the next
    call. Paging itself goes on from the adapter's own cursor. CRM errors propagate; what was
    done until then stays done and is in `progress`."""
    rt = current()
    horizon = rt.clock().timestamp() - float(getattr(adapter, "index_lag_seconds", 0.0))
    with rt.store.tenant(tenant_id) as s:
        row = s.get(SyncCursor, (tenant_id, DEALS_CURSOR))
        progress.cursor = row.value if row else None
    cursor = progress.cursor
    for _ in range(pages):
        changes = adapter.changed_since(cursor)
        cursor = changes.cursor
        queues.request_refresh(rt.redis, tenant_id, changes.deal_ids, window=rt.coalesce_seconds)
        progress.requested += len(changes.deal_ids)
        progress.pages += 1
        progress.cursor = _not_after(changes.cursor, horizon)
        progress.more = changes.more
        _checkpoint(tenant_id, progress.cursor)
        if on_page is not None:
            on_page(progress)
        if not changes.more:
            break
    return progress


MS_CURSOR_FROM = 1e11
"""Numeric cursors above this are epoch milliseconds (HubSpot's), below it epoch seconds: 1e11
seconds is the year 5138, 1e11 milliseconds March 1973."""


def _not_after(cursor: str, horizon: float) -> str:
    """Numeric cursors (timestamps) are capped at the horizon (the poll's start less the index
    lag), in their own unit; others pass as they are."""
    try:
        value = float(cursor)
    except ValueError:
        return cursor
    if value >= MS_CURSOR_FROM:
        return str(min(int(value), int(horizon * 1000)))
    return str(min(value, horizon))


def _checkpoint(tenant_id: str, value: str) -> None:
    rt = current()
    with rt.store.tenant(tenant_id) as s:
        row = s.get(SyncCursor, (tenant_id, DEALS_CURSOR))
        if row is None:
            s.add(
                SyncCursor(
                    tenant_id=tenant_id, name=DEALS_CURSOR, value=value, updated_at=rt.clock()
                )
            )
        else:
            row.value = value
            row.updated_at = rt.clock()
