"""What an admin needs to know about a tenant's pipeline: is it running, how far is the sweep,
what is waiting, and why it stopped if it did."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from connector.store.db import Store
from connector.store.models import (
    ApiUsageRow,
    InboxEvent,
    OutboxEffect,
    SetupRun,
    SweepRun,
    SyncCursor,
)
from connector.store.tenants import get_tenant
from connector.store.times import from_db


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
    api_usage: dict[str, object] | None = None
    """The CRM account's API usage as last read, and since when non-urgent work waits."""


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
        cursors = {
            c.name: (now - from_db(c.updated_at)).total_seconds()
            for c in s.scalars(select(SyncCursor))
        }
        usage = _usage(s.get(ApiUsageRow, tenant_id))
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
        api_usage=usage,
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
    if st.api_usage:
        lines.append(_describe_usage(st.api_usage))
    return lines


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
        f"  setup: {setup['status']} ({when}), {setup['requested']} deals requested in "
        f"{setup['pages']} pages{detail}"
    ]
    labels = setup["labels"]
    if isinstance(labels, dict) and labels:
        mapped = ", ".join(f"{label} -> {role}" for label, role in sorted(labels.items()))
        lines.append(f"  contact labels: {mapped}")
    return lines
