"""A poll of a slow CRM with a backlog (an org restamped by a mass update, a tenant paused for a
day at its API share): RQ stops a poll job after 60 s, so a poll stops taking pages in time and
the next one reads on from the checkpoints, activities included."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from redis import Redis

from adapters.base import ActivityChanges, Changes
from connector import queues
from connector.queues import REFRESH_TIMEOUT
from connector.store.models import SyncCursor
from connector.store.status import LAST_POLL
from connector.store.tenants import create_tenant
from jobs import schedule
from jobs.runtime import Runtime

PAGE_SECONDS = 4.0
"""What one page takes in this slow org."""


@dataclass
class SlowOrg:
    """Deals and activities changed one a page, each page taking PAGE_SECONDS of the clock;
    cursors count the records read."""

    clock: Any
    deals: list[str]
    activities: dict[str, list[str]]
    activity_objects: tuple[str, ...] = ("Task",)
    index_lag_seconds: float = 0.0
    calls: list[str] = field(default_factory=list)

    def _page(self, items: list[str], cursor: str | None) -> tuple[list[str], str, bool]:
        self.clock.now += timedelta(seconds=PAGE_SECONDS)
        start = int(float(cursor or 0))
        return items[start : start + 1], str(start + 1), start + 1 < len(items)

    def changed_since(self, cursor: str | None) -> Changes:
        self.calls.append("deals")
        ids, out, more = self._page(self.deals, cursor)
        return Changes(ids, out, more=more)

    def activities_changed_since(self, cursors: Mapping[str, str]) -> ActivityChanges:
        self.calls.append("activities")
        ids, out, more = self._page(self.activities["Task"], cursors["Task"])
        return ActivityChanges(ids, [], [], {"Task": out}, more=more)


@pytest.fixture
def slow(rt: Runtime, clock: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[str, SlowOrg]:
    tenant, _ = create_tenant(rt.store, crm="test", account_id="slow", now=clock())
    org = SlowOrg(
        clock, deals=[f"deal{i:02d}" for i in range(40)],
        activities={"Task": [f"called{i:02d}" for i in range(40)]},
    )  # fmt: skip
    with rt.store.tenant(tenant.id) as s:  # a tenant polled before: its activity cursor is set
        s.add(SyncCursor(tenant_id=tenant.id, name="activities:Task", value="0",
                         updated_at=clock()))  # fmt: skip
    monkeypatch.setattr(schedule, "adapter_for_tenant", lambda _rt, _tenant: org)
    return tenant.id, org


def _requested(redis: Redis, tenant_id: str) -> set[str]:
    return {m.decode() for m in redis.smembers(queues.pending_key(tenant_id))}


def test_a_poll_of_a_slow_backlog_stops_before_rq_would_and_the_next_polls_read_on(
    rt: Runtime, redis: Redis, clock: Any, slow: tuple[str, SlowOrg]
) -> None:
    tenant_id, org = slow
    started = clock()
    schedule.poll(tenant_id)
    assert clock() - started < timedelta(seconds=REFRESH_TIMEOUT), "RQ would have stopped it"
    assert "activities" in org.calls, "a deal backlog does not hold back the calls reps log"
    with rt.store.tenant(tenant_id) as s:
        assert s.get(SyncCursor, (tenant_id, LAST_POLL)) is not None, "its outcome is kept"
    for _ in range(40):
        clock.now += timedelta(minutes=5)
        schedule.poll(tenant_id)
    assert _requested(redis, tenant_id) == {*org.deals, *org.activities["Task"]}, "none skipped"
