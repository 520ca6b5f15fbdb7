"""What an admin needs to know about a tenant's pipeline: is it running, how far is the sweep,
what is waiting, why it stopped if it did, and what the admin must fix in the CRM (notices).

A tenant whose CRM is followed through a change feed (Zendesk Sell's Firehose) also shows how
old its feed position is and when it was last polled: the Firehose keeps 72 hours of events,
so a position older than FEED_WARN_HOURS is a warning (past 72 hours the next poll must list
every record again)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from adapters.sell.firehose import position_ages
from connector.store.credentials import OAUTH
from connector.store.db import Store
from connector.store.mirror import notices
from connector.store.models import (
    ApiUsageRow,
    Credential,
    DealRow,
    InboxEvent,
    OutboxEffect,
    SetupRun,
    SweepRun,
    SyncCursor,
    UserRow,
)
from connector.store.tenants import current_settings, get_tenant
from connector.store.times import from_db

FEED_CURSOR = "deals"
"""The sync cursor of a tenant's incremental pull (jobs.schedule): a watermark, or for Sell its
Firehose positions."""
LAST_POLL = "poll"
"""The sync cursor keeping the last poll's outcome (its value) and time (jobs.schedule)."""
FEED_RETENTION_HOURS = 72
FEED_WARN_HOURS = 48
"""A feed position older than this is a warning: the Firehose forgets after 72 hours."""


@dataclass
class TenantStatus:
    tenant_id: str
    crm: str
    status: str
    reason: str | None
    sweep: dict[str, object] | None
    inbox: dict[str, int] = field(default_factory=dict)
    oldest_pending_seconds: float | None = None
    outbox: dict[str, int] = field(default_factory=dict)
    cursors: dict[str, float] = field(default_factory=dict)
    """Seconds since each sync cursor last moved."""
    setup: dict[str, object] | None = None
    """The latest install setup (provisioning, initial sync), if any."""
    feed: dict[str, float | None] = field(default_factory=dict)
    """Seconds since each change-feed stream's position was taken (None: listed in full)."""
    last_poll: tuple[float, str] | None = None
    """Seconds since the last poll, and its outcome."""
    notices: dict[str, str] = field(default_factory=dict)
    """What an admin must fix in the CRM, by name."""
    api_usage: dict[str, object] | None = None
    """The CRM account's API usage as last read, and since when non-urgent work waits."""
    departed: list[tuple[str, str, int]] = field(default_factory=list)
    """Users the CRM deactivated who still own open deals: (id, name, open deals)."""
    fallback_owner: str | None = None
    """Who takes their deals' tasks (`tasks.fallback_owner`); None: nobody."""
    connected: bool = True
    """False while a CRM that is read with tokens has none (a tenant added from the command
    line, not installed yet): nothing can be read or written for it."""


CONNECTED_BY_INSTALL = ("hubspot", "salesforce", "sell")
"""The CRMs a tenant reads with the tokens its install (or, for Sell, a personal token) gave."""


def tenant_status(store: Store, tenant_id: str, now: datetime) -> TenantStatus:
    tenant = get_tenant(store, tenant_id)
    with store.tenant(tenant_id) as s:
        setup = _setup(s.get(SetupRun, tenant_id))
        run = s.scalars(select(SweepRun).order_by(SweepRun.day.desc()).limit(1)).first()
        inbox = dict(
            s.execute(select(InboxEvent.status, func.count()).group_by(InboxEvent.status)).all()
        )
        oldest = s.scalar(
            select(func.min(InboxEvent.received_at)).where(InboxEvent.status == "pending")
        )
        outbox = {
            f"{kind} {status}": n
            for kind, status, n in s.execute(
                select(OutboxEffect.kind, OutboxEffect.status, func.count()).group_by(
                    OutboxEffect.kind, OutboxEffect.status
                )
            )
        }
        rows = list(s.scalars(select(SyncCursor)))
        cursors = {c.name: (now - from_db(c.updated_at)).total_seconds() for c in rows}
        values = {c.name: c.value for c in rows}
        usage = _usage(s.get(ApiUsageRow, tenant_id))
        connected = tenant.crm not in CONNECTED_BY_INSTALL or bool(
            s.scalar(select(func.count()).select_from(Credential).where(Credential.name == OAUTH))
        )
        departed = [
            (user_id, name, n)
            for user_id, name, n in s.execute(
                select(UserRow.crm_id, UserRow.name, func.count())
                .join(
                    DealRow,
                    (DealRow.tenant_id == UserRow.tenant_id) & (DealRow.owner == UserRow.crm_id),
                )
                .where(~UserRow.active, DealRow.status == "open")
                .group_by(UserRow.crm_id, UserRow.name)
                .order_by(UserRow.crm_id)
            )
        ]
    last_poll = None
    if LAST_POLL in cursors:
        last_poll = (cursors.pop(LAST_POLL), values[LAST_POLL])
    sweep = None
    if run is not None:
        sweep = {
            "day": run.day.isoformat(),
            "status": run.status,
            "done": run.done,
            "total": run.total,
            "started_at": from_db(run.started_at).isoformat(),
            "finished_at": from_db(run.finished_at).isoformat() if run.finished_at else None,
        }
    return TenantStatus(
        tenant_id=tenant.id,
        crm=tenant.crm,
        status=tenant.status,
        reason=tenant.status_reason,
        sweep=sweep,
        inbox=inbox,
        oldest_pending_seconds=(now - from_db(oldest)).total_seconds() if oldest else None,
        outbox=outbox,
        cursors=cursors,
        setup=setup,
        feed=position_ages(values.get(FEED_CURSOR), now) if tenant.crm == "sell" else {},
        last_poll=last_poll,
        notices=notices(store, tenant_id),
        api_usage=usage,
        departed=departed,
        fallback_owner=current_settings(store, tenant_id).fallback_owner if departed else None,
        connected=connected,
    )


def _usage(row: ApiUsageRow | None) -> dict[str, object] | None:
    if row is None:
        return None
    return {
        "used": row.used,
        "limit": row.limit,
        "share": row.share,
        "checked_at": from_db(row.checked_at).isoformat(),
        "paused_since": from_db(row.paused_since).isoformat() if row.paused_since else None,
    }


def _setup(row: SetupRun | None) -> dict[str, object] | None:
    if row is None:
        return None
    return {
        "status": row.status,
        "requested": row.requested,
        "pages": row.pages,
        "labels": dict(row.labels or {}),
        "detail": row.detail,
        "started_at": from_db(row.started_at).isoformat(),
        "finished_at": from_db(row.finished_at).isoformat() if row.finished_at else None,
    }


def describe(st: TenantStatus) -> list[str]:
    """The status as lines a person reads."""
    lines = [f"tenant {st.tenant_id} ({st.crm}): {st.status}"]
    if st.reason and st.status != "active":
        lines.append(f"  why: {st.reason}")
    if not st.connected and st.status == "active":
        lines.append(
            f"  not connected: no {st.crm} tokens yet, nothing is read or written; install "
            f"Deal Radar from PUBLIC_URL/install/{st.crm}"
        )
    if st.setup:
        lines += _describe_setup(st.setup)
    if st.sweep:
        sw = st.sweep
        pct = f" ({100 * sw['done'] // sw['total']}%)" if sw["total"] else ""
        lines.append(
            f"  last sweep: {sw['day']} {sw['status']}, {sw['done']}/{sw['total']} deals{pct}"
        )
    else:
        lines.append("  last sweep: none yet")
    waiting = st.inbox.get("pending", 0)
    age = f", oldest {st.oldest_pending_seconds:.0f} s old" if st.oldest_pending_seconds else ""
    lines.append(f"  inbox: {waiting} pending{age}, {st.inbox.get('failed', 0)} failed")
    pending = {k: v for k, v in st.outbox.items() if not k.endswith(" done")}
    lines.append(
        "  outbox: "
        + (", ".join(f"{n} {k}" for k, n in sorted(pending.items())) or "nothing waiting")
    )
    for name, seconds in sorted(st.cursors.items()):
        lines.append(f"  cursor {name}: moved {seconds:.0f} s ago")
    lines += describe_feed(st)
    for name, message in sorted(st.notices.items()):
        lines.append(f"  notice {name}: {message}")
    if st.api_usage:
        lines.append(_describe_usage(st.api_usage))
    lines += _describe_departed(st)
    return lines


def _describe_departed(st: TenantStatus) -> list[str]:
    """Reps who left and still own open deals: the CRM keeps them as owners until someone
    reassigns the deals, and says where their tasks go meanwhile."""
    if not st.departed:
        return []
    where = (
        f"their tasks go to {st.fallback_owner} (tasks.fallback_owner)"
        if st.fallback_owner
        else "their tasks are made unassigned: set tasks.fallback_owner to give them to someone"
    )
    lines = [f"  deactivated users still owning open deals (reassign them in the CRM); {where}:"]
    for user_id, name, deals in st.departed:
        lines.append(f"    {name or user_id} ({user_id}): {deals} open deal{'s' * (deals != 1)}")
    return lines


def describe_feed(st: TenantStatus) -> list[str]:
    """The change feed's position age and the last poll, with a warning before the retention
    is at risk."""
    lines = []
    if st.last_poll is not None:
        seconds, outcome = st.last_poll
        lines.append(f"  last poll: {_age(seconds)} ago ({outcome})")
    if not st.feed:
        return lines
    listed = sorted(name for name, age in st.feed.items() if age is None)
    ages = {name: age for name, age in st.feed.items() if age is not None}
    if ages:
        stream, oldest = max(ages.items(), key=lambda item: item[1])
        lines.append(f"  feed position: {_age(oldest)} old (oldest stream: {stream})")
        if oldest >= FEED_WARN_HOURS * 3600:
            lines.append(
                f"  WARNING: the feed position is {oldest / 3600:.0f} h old; the Firehose keeps "
                f"{FEED_RETENTION_HOURS} h of changes, past that every record must be listed "
                "again. Check that `dealradar cron` and a `dealradar worker` are running and "
                "that polls succeed (`last poll` above)."
            )
    if listed:
        lines.append(f"  feed: listing every record of {', '.join(listed)} (a full sync)")
    return lines


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _describe_usage(usage: dict[str, object]) -> str:
    used, limit = int(usage["used"]), int(usage["limit"])  # type: ignore[call-overload]
    pct = f" ({100 * used // limit}%)" if limit else ""
    line = f"  API usage: {used:,}/{limit:,} calls in 24 h{pct} at {usage['checked_at']}"
    share = usage["share"]
    if usage["paused_since"]:
        line += (
            f"; past the share of {float(share or 0):.0%}: polling and the daily sweep paused "  # type: ignore[arg-type]
            f"since {usage['paused_since']}, until usage falls"
        )
    elif share is not None:
        line += f"; non-urgent work pauses at {float(share):.0%}"  # type: ignore[arg-type]
    return line


def _describe_setup(setup: dict[str, object]) -> list[str]:
    when = setup["finished_at"] or setup["started_at"]
    detail = f"; {setup['detail']}" if setup["detail"] else ""
    lines = [
        f"  setup: {setup['status']} ({when}), {_count(setup['requested'], 'deal')} requested "
        f"in {_count(setup['pages'], 'page')}{detail}"
    ]
    labels = setup["labels"]
    if isinstance(labels, dict) and labels:
        mapped = ", ".join(f"{label} -> {role}" for label, role in sorted(labels.items()))
        lines.append(f"  contact labels: {mapped}")
    return lines


def _count(n: object, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
