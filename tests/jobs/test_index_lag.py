"""A CRM whose search shows changes late (HubSpot's index): the sync cursor stays behind by the
adapter's index lag, so a change indexed after a later one is still found by the next poll."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from redis import Redis

from adapters.base import Changes
from connector import queues
from connector.store.models import SyncCursor
from connector.store.tenants import create_tenant
from jobs.runtime import Runtime
from jobs.schedule import DEALS_CURSOR, Progress, follow_changes

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


@dataclass
class LaggingSearch:
    """A search by modification time (GTE the cursor, ascending, pages of `page`) over deals
    that become visible only once indexed."""

    index_lag_seconds: float
    page: int = 2
    deals: dict[str, float] = field(default_factory=dict)  # id -> modified at (epoch s)
    indexed: set[str] = field(default_factory=set)

    def change(self, deal_id: str, at: datetime, *, indexed: bool = True) -> None:
        self.deals[deal_id] = at.timestamp()
        if indexed:
            self.indexed.add(deal_id)

    def changed_since(self, cursor: str | None) -> Changes:
        since = float(cursor) if cursor else 0.0
        found = sorted(
            (at, deal_id)
            for deal_id, at in self.deals.items()
            if deal_id in self.indexed and at > since
        )
        page = found[: self.page]
        out = str(page[-1][0]) if page else (cursor or "0")
        return Changes([d for _, d in page], out, more=len(found) > self.page)


def _poll(rt: Runtime, tenant_id: str, adapter: LaggingSearch) -> Sequence[str]:
    rt.redis.delete(queues.pending_key(tenant_id))
    follow_changes(tenant_id, adapter, Progress(), pages=50)  # type: ignore[arg-type]
    return sorted(m.decode() for m in rt.redis.smembers(queues.pending_key(tenant_id)))


def _cursor(rt: Runtime, tenant_id: str) -> float:
    with rt.store.tenant(tenant_id) as s:
        return float(s.get(SyncCursor, (tenant_id, DEALS_CURSOR)).value)


def test_a_change_indexed_late_is_found_by_the_next_poll(rt: Runtime, redis: Redis, clock) -> None:
    clock.now = NOW
    tenant, _ = create_tenant(rt.store, crm="test", account_id="lag", now=NOW)
    search = LaggingSearch(index_lag_seconds=120)
    search.change("old", NOW - timedelta(hours=1))
    search.change("late", NOW - timedelta(seconds=40), indexed=False)  # still being indexed
    search.change("recent", NOW - timedelta(seconds=10))

    assert _poll(rt, tenant.id, search) == ["old", "recent"]
    assert _cursor(rt, tenant.id) == (NOW - timedelta(seconds=120)).timestamp()

    search.indexed.add("late")
    clock.now = NOW + timedelta(minutes=5)
    assert "late" in _poll(rt, tenant.id, search)


def test_without_index_lag_the_late_change_is_lost(rt: Runtime, redis: Redis, clock) -> None:
    """What the lag is for: a cursor at the newest change seen skips one indexed late."""
    clock.now = NOW
    tenant, _ = create_tenant(rt.store, crm="test", account_id="nolag", now=NOW)
    search = LaggingSearch(index_lag_seconds=0)
    search.change("late", NOW - timedelta(seconds=40), indexed=False)
    search.change("recent", NOW - timedelta(seconds=10))
    assert _poll(rt, tenant.id, search) == ["recent"]
    search.indexed.add("late")
    clock.now = NOW + timedelta(minutes=5)
    assert _poll(rt, tenant.id, search) == []


def test_paging_through_recent_changes_requests_every_deal_once(
    rt: Runtime, redis: Redis, clock
) -> None:
    """A freshly filled account: every deal changed within the lag. The checkpoint stays behind,
    but paging follows the search's own cursor, so one sync requests all of them."""
    clock.now = NOW
    tenant, _ = create_tenant(rt.store, crm="test", account_id="fresh", now=NOW)
    search = LaggingSearch(index_lag_seconds=120, page=3)
    ids = [f"d{i:02d}" for i in range(10)]
    for i, deal_id in enumerate(ids):
        search.change(deal_id, NOW - timedelta(seconds=60 - i))
    progress = Progress()
    follow_changes(tenant.id, search, progress, pages=50)  # type: ignore[arg-type]
    assert progress.requested == 10 and progress.pages == 4
    pending = sorted(m.decode() for m in rt.redis.smembers(queues.pending_key(tenant.id)))
    assert pending == ids
    assert _cursor(rt, tenant.id) == (NOW - timedelta(seconds=120)).timestamp()
