"""A CRM account's API allowance, shared with the customer's other tools: what Deal Radar has
seen of its usage, and whether non-urgent work waits.

Salesforce states an org's usage on every answer (`Sforce-Limit-Info: api-usage=USED/LIMIT`,
a rolling 24 hours). The adapter's client reports each reading through its context
(`record`): kept in Redis for the workers, and in the `api_usage` row at most once a
PERSIST_SECONDS for `dealradar tenants status`. Non-urgent work, the poll and the daily sweep,
asks `paused` before it calls the CRM: past the tenant's share of the allowance
(`schedule.api_share`, 80% by default) it waits, and the row says since when; changes reps make
(events, refreshes, their write-backs) go on, up to Salesforce's own 403. A reading older than
STALE_SECONDS is refreshed first with one `GET /limits` (the adapter's `api_usage`), so a paused
tenant resumes once the rolling window has let usage fall, even when nothing else calls.

Error policy: Redis and database errors propagate (the job's own policy applies); a CRM error of
the probe is logged and the last reading stands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from adapters.base import Adapter, ApiUsage
from adapters.errors import CrmError
from connector.store import tenants
from connector.store.models import ApiUsageRow
from connector.store.times import from_db
from jobs.runtime import Runtime

log = logging.getLogger(__name__)

PERSIST_SECONDS = 60
"""The `api_usage` row is rewritten at most this often by readings (a pause, at once)."""
STALE_SECONDS = 600
"""A reading older than this is refreshed (one call) before deciding on a pause."""
_KEY = "dealradar:usage:{tenant}"
_PERSIST = "dealradar:usage:persist:{tenant}"


def record(rt: Runtime, tenant_id: str, usage: ApiUsage) -> None:
    """Keep the CRM's latest statement of the tenant's usage (every API call reports one)."""
    now = rt.clock()
    rt.redis.hset(
        _KEY.format(tenant=tenant_id),
        mapping={"used": usage.used, "limit": usage.limit, "at": now.timestamp()},
    )
    if rt.redis.set(_PERSIST.format(tenant=tenant_id), "1", nx=True, ex=PERSIST_SECONDS):
        _save(rt, tenant_id, usage, now)


def latest(rt: Runtime, tenant_id: str) -> tuple[ApiUsage, datetime] | None:
    """The latest reading and when it was made (Redis, else the stored row), or None."""
    found = rt.redis.hgetall(_KEY.format(tenant=tenant_id))
    if found:
        at = datetime.fromtimestamp(float(found[b"at"]), UTC)
        return ApiUsage(int(found[b"used"]), int(found[b"limit"])), at
    with rt.store.tenant(tenant_id) as s:
        row = s.get(ApiUsageRow, tenant_id)
        if row is None:
            return None
        return ApiUsage(row.used, row.limit), from_db(row.checked_at)


def paused(rt: Runtime, tenant_id: str, adapter: Callable[[], Adapter] | None = None) -> str | None:
    """Why the tenant's non-urgent work waits now (its usage past its share), or None.
    `adapter` builds the tenant's adapter, to read a stale usage again (`api_usage`)."""
    share = tenants.current_settings(rt.store, tenant_id).schedule.get("api_share", 80) / 100
    now = rt.clock()
    reading = latest(rt, tenant_id)
    if reading is None:
        return None  # a CRM that states no usage, or none seen yet: nothing to spare
    usage, at = reading
    if now - at > timedelta(seconds=STALE_SECONDS) and adapter is not None:
        probe = getattr(adapter(), "api_usage", None)
        if probe is not None:
            try:
                usage = probe()  # recorded by the client's report as well
            except CrmError as exc:
                log.warning("tenant %s: API usage not read again (%s); the last reading "
                            "stands", tenant_id, exc)  # fmt: skip
    over = usage.limit > 0 and usage.used >= share * usage.limit
    since = _mark(rt, tenant_id, usage, share, over, now)
    if not over:
        return None
    return (
        f"API usage {usage.used:,}/{usage.limit:,} ({usage.share:.0%}) is past Deal Radar's "
        f"share of {share:.0%} (settings schedule.api_share) since {since:%Y-%m-%d %H:%M} UTC: "
        "polling and the daily sweep wait until it falls; reps' changes are still handled"
    )


def _mark(
    rt: Runtime, tenant_id: str, usage: ApiUsage, share: float, over: bool, now: datetime
) -> datetime:
    """Store the reading with the pause (set when it begins, cleared when it ends); when the
    pause began (now when there is none)."""
    with rt.store.tenant(tenant_id) as s:
        row = s.get(ApiUsageRow, tenant_id)
        if row is None:
            row = ApiUsageRow(tenant_id=tenant_id, used=usage.used, limit=usage.limit)
            s.add(row)
        was = row.paused_since
        row.used, row.limit, row.share, row.checked_at = usage.used, usage.limit, share, now
        if over and was is None:
            row.paused_since = now
            log.warning("tenant %s: API usage %d/%d past its share %.0f%%: non-urgent work "
                        "paused", tenant_id, usage.used, usage.limit, share * 100)  # fmt: skip
        elif not over and was is not None:
            row.paused_since = None
            log.info("tenant %s: API usage %d/%d back under its share: non-urgent work "
                     "resumes", tenant_id, usage.used, usage.limit)  # fmt: skip
        return from_db(row.paused_since) if row.paused_since else now


def _save(rt: Runtime, tenant_id: str, usage: ApiUsage, now: datetime) -> None:
    with rt.store.tenant(tenant_id) as s:
        row = s.get(ApiUsageRow, tenant_id)
        if row is None:
            s.add(ApiUsageRow(tenant_id=tenant_id, used=usage.used, limit=usage.limit,
                              checked_at=now))  # fmt: skip
        else:
            row.used, row.limit, row.checked_at = usage.used, usage.limit, now
