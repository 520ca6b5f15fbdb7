"""The daily sweep: re-evaluate every open deal of a tenant from the snapshot.

Time-based alerts ("no activity for 10 days") change without any CRM event, so each tenant's
open deals are evaluated again once a day at a local hour. The sweep runs as a chain of chunk
jobs on the sweep queue, so a worker serves live changes between two chunks, and streams deals
in batches (never a whole tenant in memory). A `sweep_runs` row per tenant and local day makes
the sweep happen once a day whatever the scheduler does, and carries its progress
(`dealradar tenants status`). Deals being refreshed at the same moment are skipped: the refresh
evaluates them anyway.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta

from sqlalchemy import func, select

from connector import queues
from connector.store import tenants
from connector.store.models import DealRow, SweepRun
from connector.store.snapshots import load_bundles, open_deal_ids
from connector.store.sql import insert_new
from jobs import budget, pipeline
from jobs.adapters import adapter_for_tenant
from jobs.behind import WritesBehind
from jobs.refresh import follow_up
from jobs.runtime import Runtime, current

log = logging.getLogger(__name__)

CHUNK = 2000
"""Deals per sweep job: a worker turns to live work at least this often."""
BATCH = 500
"""Deals loaded, evaluated and committed together."""
SWEEP_TIMEOUT = 600
RESUME_SECONDS = 900
"""How often a sweep paused for its tenant's API budget looks again."""


def start(tenant_id: str, day: str) -> bool:
    """Begin the tenant's sweep for a local day, once; True if this call started it."""
    rt = current()
    now = rt.clock()
    with rt.store.tenant(tenant_id) as s:
        total = s.scalar(select(func.count()).select_from(DealRow).where(DealRow.status == "open"))
        started = insert_new(
            s,
            SweepRun,
            {
                "tenant_id": tenant_id,
                "day": date.fromisoformat(day),
                "status": "running",
                "done": 0,
                "total": total or 0,
                "started_at": now,
            },
            ("tenant_id", "day"),
        )
    if started is None:
        log.info("sweep of tenant %s for %s already started; not again", tenant_id, day)
        return False
    log.info("sweep of tenant %s for %s: %d open deals", tenant_id, day, total)
    queues.queue(rt.redis, queues.SWEEP).enqueue(
        "jobs.sweep.chunk", tenant_id, day, "", job_timeout=SWEEP_TIMEOUT
    )
    return True


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for one chunk, and collect once at its end.

    A batch makes a few hundred thousand small objects (each deal's activities decoded from its
    pack, the engine's results), nearly all freed by reference counting when the batch ends.
    While they live, their allocations keep triggering the collector, whose passes traverse
    them again and again: a fifth of the sweep's CPU time, for no garbage found. The chunk
    bounds what a pause can hold back: everything it allocated is still in the youngest
    generation at its end (no collection ran to promote it), so collecting that generation
    alone finds any cycle it made, without a full pass over the worker's long-lived objects.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
            gc.collect(0)


def _waits_for_budget(tenant_id: str, day: str, after: str) -> bool:
    """Past the tenant's share of its CRM's API allowance the sweep (whose write-backs spend
    it) pauses where it is and looks again in RESUME_SECONDS (jobs/budget.py); the run's row
    says `paused` meanwhile."""
    rt = current()
    tenant = tenants.get_tenant(rt.store, tenant_id)
    why = budget.paused(rt, tenant_id, lambda: adapter_for_tenant(rt, tenant))
    status = "paused" if why else "running"
    with rt.store.tenant(tenant_id) as s:
        run = s.get(SweepRun, (tenant_id, date.fromisoformat(day)))
        if run is not None and run.status != status:
            run.status = status
    if why is None:
        return False
    log.info("sweep of tenant %s for %s paused: %s", tenant_id, day, why)
    queues.queue(rt.redis, queues.SWEEP).enqueue_in(
        timedelta(seconds=RESUME_SECONDS), "jobs.sweep.chunk", tenant_id, day, after,
        job_timeout=SWEEP_TIMEOUT,
    )  # fmt: skip
    return True


def chunk(tenant_id: str, day: str, after: str) -> None:
    """Sweep the next CHUNK open deals after `after`, then chain the next chunk."""
    with _no_cycle_collection():
        _chunk(tenant_id, day, after)


def _chunk(tenant_id: str, day: str, after: str) -> None:
    rt = current()
    if _waits_for_budget(tenant_id, day, after):
        return
    settings = tenants.current_settings(rt.store, tenant_id)
    recorded: list[pipeline.Recorded] = []
    with rt.store.tenant(tenant_id) as s:
        chunk_ids = open_deal_ids(s, after=after, limit=CHUNK)
    last = chunk_ids[-1] if chunk_ids else after
    # Each batch is read and evaluated here while the one before is written behind
    # (jobs/behind.py); its deals stay locked until its own write is committed.
    with WritesBehind(f"sweep-{tenant_id}") as behind:
        for start in range(0, len(chunk_ids), BATCH):
            ids = chunk_ids[start : start + BATCH]
            locks = queues.DealLocks(rt.redis, tenant_id, rt.lock_seconds)
            taken, _busy = locks.acquire(ids)
            try:
                with rt.store.tenant(tenant_id) as s:
                    plan = pipeline.prepare(
                        s, tenant_id, load_bundles(s, taken), settings, rt.clock()
                    )
            except BaseException:
                locks.release()
                raise
            behind.hand(_writer(rt, tenant_id, day, plan, len(ids), recorded), locks.release)
    writebacks = sum(r.writebacks for r in recorded)
    events = sum(r.events for r in recorded)
    finished = len(chunk_ids) < CHUNK
    if finished:
        with rt.store.tenant(tenant_id) as s:
            run = s.get(SweepRun, (tenant_id, date.fromisoformat(day)))
            run.status = "done"
            run.finished_at = rt.clock()
        log.info("sweep of tenant %s for %s done", tenant_id, day)
    else:
        queues.queue(rt.redis, queues.SWEEP).enqueue(
            "jobs.sweep.chunk", tenant_id, day, last, job_timeout=SWEEP_TIMEOUT
        )
    follow_up(rt, tenant_id, writebacks, events)


def _writer(
    rt: Runtime,
    tenant_id: str,
    day: str,
    plan: pipeline.Plan | None,
    swept: int,
    recorded: list[pipeline.Recorded],
) -> Callable[[], None]:
    """The write of one batch: its results and the run's progress, in one transaction."""

    def write() -> None:
        with rt.store.tenant(tenant_id) as s:
            if plan is not None:
                recorded.append(pipeline.apply(s, plan))
            run = s.get(SweepRun, (tenant_id, date.fromisoformat(day)))
            run.done += swept
            progress = (run.done, run.total)
        log.info("sweep of tenant %s for %s: %d/%d deals", tenant_id, day, *progress)

    return write
