"""What the cron process starts every minute: daily sweeps at each tenant's local hour, the
morning digest after them (jobs.digest.plan), and incremental polling of the CRMs that send no
webhooks. It also asks again for the re-sweep of settings saved today whose request was lost
(`_settings_left_behind`).

`tick()` is cheap and safe to run twice: a sweep is started at most once per tenant and local
day (the sweep_runs row decides), and a poll at most once per interval (a Redis mark with that
lifetime decides). That is what keeps a second cron process, or a tick run twice, from doubling
any scheduled work.

`poll(tenant)` pages through the deals changed since the tenant's cursor, requests their
refresh, and checkpoints the cursor after every page; the cursor never moves past the moment the
poll started, less the time the CRM's search may take to show a change (the adapter's
`index_lag_seconds`), so a change made during the poll or indexed late is seen by the next one.
An adapter whose deal listing does not show new activities (`adapters.base.ActivityFeed`:
Salesforce) has its activity objects followed too, each from its own cursor, in the same way
(`follow_activities`).

A CRM whose change feed is read every few seconds (its adapter has `poll_seconds(settings)`:
Zendesk Sell, 15 s by default) polls as a chain: each poll schedules the next one after the
interval (RQ's scheduler, which `dealradar worker` runs), later when the CRM asked to slow
down (jobs.policy's backoff, honouring Retry-After). The tick starts a chain the first time and
restarts one Redis lost: the chain's mark outlives its next run by POLL_GRACE, so while a chain
lives the tick adds nothing. Two polls of one tenant never run together (a Redis lock); each
poll's outcome is kept for `dealradar tenants status` (the sync cursor `poll`). Such a tenant
never set up (added with a personal token by `dealradar tenants add`) gets its setup job from
the tick first.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from adapters import ADAPTERS
from adapters.base import ActivityFeed, Adapter
from adapters.errors import CrmError
from connector import queues
from connector.store import tenants
from connector.store.models import (
    InboxEvent,
    SettingsVersion,
    SetupRun,
    SweepRun,
    SyncCursor,
    Tenant,
)
from connector.store.snapshots import deals_of_records
from connector.store.status import FEED_CURSOR, LAST_POLL
from connector.store.times import from_db
from engine.settings import Settings
from jobs import budget, digest, policy, sweep
from jobs.adapters import adapter_for_tenant
from jobs.runtime import Runtime, current

log = logging.getLogger(__name__)

DEALS_CURSOR = FEED_CURSOR
POLL_PAGES = 50
"""Pages read by one poll job; a backlog larger than this continues at the next poll."""
POLL_BUDGET = timedelta(seconds=30)
"""A poll takes no new page after this long (a Salesforce batch takes a second or two), so
that RQ's job timeout (connector.queues.REFRESH_TIMEOUT, 60 s) never stops it: a poll stopped
there loses the page under way and its outcome, which an org that pushes is polled hourly by.
The backlog is read on by the next poll, from the checkpoints."""
POLL_GRACE = 120.0
"""Seconds a poll chain's mark outlives its next run: past it, the tick restarts the chain."""
POLL_LOCK_SECONDS = 120
"""A poll's lock outlives any poll job (RQ stops one after a minute)."""


def _needs_polling(crm: str) -> bool:
    factory = ADAPTERS.get(crm)
    return bool(getattr(factory, "needs_polling", False))


def _poll_seconds(crm: str, settings: Settings) -> float | None:
    """The seconds between two polls of a chained CRM (its adapter says), else None."""
    interval = getattr(ADAPTERS.get(crm), "poll_seconds", None)
    return float(interval(settings)) if interval is not None else None


def start_polling(rt: Runtime, tenant: Tenant) -> bool:
    """Start the tenant's poll chain now (after its setup), if its CRM polls as a chain."""
    seconds = _poll_seconds(tenant.crm, tenants.current_settings(rt.store, tenant.id))
    if seconds is None:
        return False
    return queues.enqueue_once(
        rt.redis, queues.EVENTS, "jobs.schedule.poll", tenant.id, what="poll",
        hold=seconds + POLL_GRACE,
    )  # fmt: skip


def tick() -> dict[str, int]:
    rt = current()
    now = rt.clock()
    with rt.store.global_session() as s:
        active = [(t.id, t.crm, t.timezone) for t in s.scalars(
            select(Tenant).where(Tenant.status == "active")
        )]  # fmt: skip
    counts = {"tenants": len(active), "sweeps": 0, "resweeps": 0, "polls": 0, "digests": 0}
    for tenant_id, crm, zone in active:
        try:
            for what, n in _tick_tenant(rt, tenant_id, crm, zone, now).items():
                counts[what] += n
        except (RedisError, SQLAlchemyError):
            raise  # our own store or queue: every tenant would fail alike; the next tick retries
        except Exception:
            # One tenant's fault (saved settings today's code refuses, say) must not hold back
            # the sweeps, digests and polls of the tenants after it.
            log.exception("tick: tenant %s skipped", tenant_id)
    return counts


def _tick_tenant(rt: Runtime, tenant_id: str, crm: str, zone: str, now: datetime) -> dict[str, int]:
    settings = tenants.current_settings(rt.store, tenant_id)
    local = now.astimezone(ZoneInfo(settings.timezone or zone))
    counts = {"sweeps": 0, "resweeps": 0, "polls": 0, "digests": 0}
    with rt.store.tenant(tenant_id) as s:
        run = s.get(SweepRun, (tenant_id, local.date()))
        started = from_db(run.started_at) if run is not None else None
    if (
        _sweep_hour_reached(local, settings.schedule["sweep_hour"])
        and started is None
        and not sweep.first_sync_under_way(tenant_id, now)
    ):
        queues.queue(rt.redis, queues.SWEEP).enqueue(
            "jobs.sweep.start", tenant_id, local.date().isoformat()
        )
        counts["sweeps"] = 1
    elif _settings_left_behind(tenant_id, started, local, now):
        counts["resweeps"] = queues.request_sweep_again(
            rt.redis, tenant_id, local.date().isoformat()
        )
    counts["digests"] = digest.plan(tenant_id, settings, local)
    if not _needs_polling(crm):
        return counts
    seconds = _poll_seconds(crm, settings)
    if seconds is None:
        interval = settings.schedule["poll_minutes"] * 60
        counts["polls"] = queues.enqueue_once(
            rt.redis, queues.EVENTS, "jobs.schedule.poll", tenant_id, what="poll", hold=interval
        )
    elif not _set_up(tenant_id):
        counts["polls"] = queues.request_setup(rt.redis, tenant_id)
    else:
        counts["polls"] = queues.enqueue_once(
            rt.redis, queues.EVENTS, "jobs.schedule.poll", tenant_id, what="poll",
            hold=seconds + POLL_GRACE,
        )  # fmt: skip
    return counts


def _sweep_hour_reached(local: datetime, hour: int) -> bool:
    """Whether `local`'s day has reached `hour` o'clock: the first of two when the clocks fall
    back; an hour early when they spring forward over it, since America/Nuuk's clocks go from
    22:59 to the next day's 00:00 on some days, which would otherwise never reach 23:00."""
    at = datetime.combine(local.date(), time(hour), tzinfo=local.tzinfo)
    earliest = min(at.astimezone(UTC), at.replace(fold=1).astimezone(UTC))
    return local.astimezone(UTC) >= earliest


def _settings_left_behind(
    tenant_id: str, started: datetime | None, local: datetime, now: datetime
) -> bool:
    """Settings saved today that no pass of the day's run (begun at `started`, None: none yet)
    has begun under, though the save is older than a queued re-sweep's mark
    (queues.SWEEP_AGAIN_HOLD): the re-sweep it asked for was lost (its worker killed as it took
    the job, Redis emptied or refusing), and the saves after it found its mark. The database
    says so; Redis only carried the request."""
    rt = current()
    with rt.store.tenant(tenant_id) as s:
        saved = from_db(s.scalar(select(func.max(SettingsVersion.changed_at))))
    if saved is None or now - saved < timedelta(seconds=queues.SWEEP_AGAIN_HOLD):
        return False
    if started is not None:
        return started < saved
    # No run yet: a save today starts the day's sweep (jobs.sweep.again), unless an install's
    # first sync is under way.
    return saved.astimezone(local.tzinfo).date() == local.date() and not (
        sweep.first_sync_under_way(tenant_id, now)
    )


def _set_up(tenant_id: str) -> bool:
    rt = current()
    with rt.store.tenant(tenant_id) as s:
        return s.get(SetupRun, tenant_id) is not None


def poll(tenant_id: str) -> int:
    """Request the refresh of every deal changed since the cursor; returns how many.

    Skipped while the tenant's API usage is past its share (jobs/budget.py), and, for a CRM
    whose accounts may push changes or not (`push_optional`: Salesforce's Outbound Messages
    and Flows), while pushes arrive, but for one poll every PUSH_POLL: the safety net, which
    reads every change since the last poll (the cursor never moves past what was not read)."""
    rt = current()
    try:
        tenant = tenants.get_tenant(rt.store, tenant_id)
    except tenants.UnknownTenant:
        log.warning("poll for unknown tenant %s dropped", tenant_id)
        return 0
    if tenant.status != "active":
        return 0
    seconds = _poll_seconds(tenant.crm, tenants.current_settings(rt.store, tenant_id))
    if seconds is None:
        return _poll(rt, tenant).requested
    rt.redis.delete(queues.scheduled_key(tenant_id, "poll"))  # from now on, the tick may start one
    delay = seconds
    lock = rt.redis.lock(f"dealradar:lock:poll:{tenant_id}", timeout=POLL_LOCK_SECONDS,
                         blocking=False)  # fmt: skip
    if not lock.acquire():
        requested = 0  # another worker is polling this tenant; the chain goes on
    else:
        try:
            progress = _poll(rt, tenant)
        finally:
            lock.release()
        requested = progress.requested
        if progress.delay is not None:
            delay = max(seconds, progress.delay)
        elif progress.more:
            delay = 0.0  # a backlog: read on without waiting
    if tenants.get_tenant(rt.store, tenant_id).status == "active":
        queues.enqueue_once(
            rt.redis, queues.EVENTS, "jobs.schedule.poll", tenant_id, what="poll",
            delay=delay, hold=POLL_GRACE,
        )  # fmt: skip
    return requested


def _poll(rt: Runtime, tenant: Tenant) -> Progress:
    tenant_id = tenant.id
    adapter = adapter_for_tenant(rt, tenant)
    why = budget.paused(rt, tenant_id, lambda: adapter)
    if why is not None:
        log.info("poll of tenant %s skipped: %s", tenant_id, why)
        return Progress(more=False)  # nothing read: no backlog to read on at once
    if (
        getattr(adapter, "push_optional", False)
        and _pushing(tenant_id)
        and not _safety_net_due(tenant_id)
    ):
        log.debug("poll of tenant %s skipped: its CRM pushes changes", tenant_id)
        return Progress(more=False)
    progress = Progress()
    outcome = "ok"
    until = rt.clock() + POLL_BUDGET
    try:
        follow_changes(tenant_id, adapter, progress, pages=POLL_PAGES, until=until)
        if getattr(adapter, "activity_objects", ()):
            follow_activities(tenant_id, adapter, progress, pages=POLL_PAGES, until=until)
    except CrmError as exc:
        log.warning("poll of tenant %s stopped at cursor %s: %s", tenant_id, progress.cursor, exc)
        decision = policy.decide_attempt(rt.redis, _attempts_key(tenant_id), exc)
        outcome = f"stopped: {decision.reason}"
        if decision.action == "suspend":  # a revoked grant: polling again cannot help
            tenants.set_status(rt.store, tenant_id, "suspended", decision.reason, rt.clock())
        elif decision.action == "retry":
            progress.delay = decision.delay
            outcome += f" (attempt {decision.attempt}; again in {decision.delay:.0f} s)"
        else:
            # Not worth retrying (a request Sell refuses, 400/404), yet the chain goes on: a
            # change in the CRM may cure it. Polled again at once, it would send the same
            # request in a loop, spending the account's hourly allowance: the next poll waits
            # at least the interval, longer the more polls in a row fail.
            progress.delay = policy.backoff(decision.attempt)
    else:
        policy.forget_attempts(rt.redis, _attempts_key(tenant_id))
    _record_poll(tenant_id, f"{outcome}; {progress.pages} pages, {progress.requested} deals")
    return progress


def _attempts_key(tenant_id: str) -> str:
    return f"dealradar:attempts:poll:{tenant_id}"


def _record_poll(tenant_id: str, outcome: str) -> None:
    rt = current()
    with rt.store.tenant(tenant_id) as s:
        row = s.get(SyncCursor, (tenant_id, LAST_POLL))
        if row is None:
            s.add(SyncCursor(tenant_id=tenant_id, name=LAST_POLL, value=outcome,
                             updated_at=rt.clock()))  # fmt: skip
        else:
            row.value, row.updated_at = outcome, rt.clock()


POLLED = "poll"
"""The inbox source of the deals a poll (or an install's listing) found."""

PUSH_FRESH = timedelta(hours=6)
"""An account that pushed a change this recently pushes: polling it every few minutes would read
again what its pushes already brought (it is polled every PUSH_POLL instead). Past it (a quiet
day, or pushes that stopped) polling resumes its pace."""


PUSH_POLL = timedelta(hours=1)
"""While an account pushes, it is still polled this often: the safety net for a change no push
carried (one an Outbound Message rule's criteria do not match, a message Salesforce dropped
after a day of retries), read within the hour rather than never."""


def _safety_net_due(tenant_id: str) -> bool:
    rt = current()
    with rt.store.tenant(tenant_id) as s:
        last = s.get(SyncCursor, (tenant_id, LAST_POLL))
    return last is None or rt.clock() - from_db(last.updated_at) >= PUSH_POLL


def _pushing(tenant_id: str) -> bool:
    rt = current()
    with rt.store.tenant(tenant_id) as s:
        # The polls' own pages are inbox events too: only what the CRM sent counts as a push.
        newest = s.scalar(
            select(func.max(InboxEvent.received_at)).where(InboxEvent.source != POLLED)
        )
    return newest is not None and rt.clock() - from_db(newest) < PUSH_FRESH


@dataclass
class Progress:
    """How far `follow_changes` got: kept up to date page by page, also when it raises."""

    requested: int = 0
    pages: int = 0
    cursor: str | None = None
    more: bool = True
    delay: float | None = None
    """Seconds to wait before the next poll (at least its interval), when the CRM asked to slow
    down or the poll failed."""


def follow_changes(
    tenant_id: str,
    adapter: Adapter,
    progress: Progress,
    *,
    pages: int,
    on_page: Callable[[Progress], None] | None = None,
    until: datetime | None = None,
) -> Progress:
    """Up to `pages` pages of the deals changed since the tenant's cursor, and no page after the
    first begun past `until`: request their refresh and checkpoint the cursor after each page,
    never past this call's start less the adapter's index lag, so that a change the CRM's
    search shows late is found by the next call. Paging itself goes on from the adapter's own
    cursor. CRM errors propagate; what was done until then stays done and is in `progress`."""
    rt = current()
    horizon = rt.clock().timestamp() - float(getattr(adapter, "index_lag_seconds", 0.0))
    with rt.store.tenant(tenant_id) as s:
        row = s.get(SyncCursor, (tenant_id, DEALS_CURSOR))
        progress.cursor = row.value if row else None
    cursor = progress.cursor
    for _ in range(pages):
        changes = adapter.changed_since(cursor)
        cursor = changes.cursor
        progress.requested += len(changes.deal_ids)
        progress.pages += 1
        progress.cursor = _not_after(changes.cursor, horizon)
        progress.more = changes.more
        _hand_over_page(tenant_id, {DEALS_CURSOR: progress.cursor}, changes.deal_ids)
        if on_page is not None:
            on_page(progress)
        if not changes.more or (until is not None and rt.clock() >= until):
            break
    return progress


ACTIVITY_CURSOR = "activities:{}"
"""The sync cursor of one activity object a poll follows (`adapters.base.ActivityFeed`)."""


def follow_activities(
    tenant_id: str,
    adapter: ActivityFeed,
    progress: Progress,
    *,
    pages: int,
    until: datetime | None = None,
) -> Progress:
    """Up to `pages` pages of the activities changed since their cursors, as `follow_changes`
    reads deals (the first page also past `until`: a backlog of deals that spent the poll's
    time holds back the calls reps log one page a poll, not until it is read): the deals they
    concern (named, or through the snapshot's links of their
    contacts and of the activities themselves, as for a webhook naming them) are requested for
    refresh, and the cursors checkpointed with them after each page, never past the horizon.

    An object without a cursor yet (a tenant polled before activities were) starts at its
    last poll or its install, whichever is later, less the index lag: what came before was
    pulled then or is swept daily, and the org's every activity is not read again. CRM errors
    propagate; what was done until then stays done and is in `progress`."""
    rt = current()
    lag = float(getattr(adapter, "index_lag_seconds", 0.0))
    horizon = rt.clock().timestamp() - lag
    names = {sobject: ACTIVITY_CURSOR.format(sobject) for sobject in adapter.activity_objects}
    with rt.store.tenant(tenant_id) as s:
        stored = {
            row.name: row.value
            for row in s.scalars(select(SyncCursor).where(SyncCursor.name.in_(names.values())))
        }
        start = None
        if len(stored) < len(names):
            start = _activities_start(s, tenant_id, horizon, lag)
    cursors = {sobject: stored.get(name) or start or "0" for sobject, name in names.items()}
    deals_left = progress.more  # the deal listing's backlog, which the next poll reads on
    for _ in range(pages):
        changes = adapter.activities_changed_since(cursors)
        cursors = dict(changes.cursors)
        with rt.store.tenant(tenant_id) as s:
            by_contact, by_activity = deals_of_records(s, changes.contact_ids, changes.activity_ids)
        deal_ids = set(changes.deal_ids)
        for deals in (*by_contact.values(), *by_activity.values()):
            deal_ids |= deals
        progress.requested += len(deal_ids)
        progress.pages += 1
        progress.more = deals_left or changes.more
        capped = {names[o]: _not_after(c, horizon) for o, c in cursors.items()}
        _hand_over_page(tenant_id, capped, sorted(deal_ids))
        if not changes.more or (until is not None and rt.clock() >= until):
            break
    return progress


def _activities_start(s: Session, tenant_id: str, horizon: float, lag: float) -> str:
    """Epoch milliseconds where activity cursors start: see `follow_activities`."""
    last_poll = s.get(SyncCursor, (tenant_id, LAST_POLL))
    setup = s.get(SetupRun, tenant_id)
    moments = [from_db(last_poll.updated_at)] if last_poll is not None else []
    moments += [from_db(setup.started_at)] if setup is not None else []
    start = max(moments).timestamp() - lag if moments else horizon
    return str(int(min(start, horizon) * 1000))


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


def _hand_over_page(tenant_id: str, values: Mapping[str, str], deal_ids: Sequence[str]) -> None:
    """Move the cursors ({name: value}) past a page, and keep the page's deals as a pending
    inbox event in the same transaction: the cursors no longer find them, and their refresh
    requested on Redis alone would be lost with it (flushed, a drain killed or timed out after
    taking them); the sweeper requests a pending event's deals again, and their refresh settles
    it. Then request that refresh."""
    rt = current()
    with rt.store.tenant(tenant_id) as s:
        if deal_ids:
            s.add(
                InboxEvent(
                    tenant_id=tenant_id, dedupe_key=f"poll:{uuid.uuid4().hex}", source=POLLED,
                    body="", deal_ids=sorted(set(deal_ids)), status="pending", attempts=0,
                    received_at=rt.clock(),
                )
            )  # fmt: skip
        for name, value in values.items():
            row = s.get(SyncCursor, (tenant_id, name))
            if row is None:
                s.add(SyncCursor(tenant_id=tenant_id, name=name, value=value,
                                 updated_at=rt.clock()))  # fmt: skip
            else:
                row.value = value
                row.updated_at = rt.clock()
    try:
        queues.request_refresh(rt.redis, tenant_id, deal_ids, window=rt.coalesce_seconds)
    except RedisError:
        log.warning("tenant %s: %d deals of a polled page wait for the sweeper (Redis refused)",
                    tenant_id, len(deal_ids))  # fmt: skip
