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
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select, update

from connector import queues
from connector.store import tenants
from connector.store.models import DealRow, SetupRun, SweepRun, Tenant
from connector.store.snapshots import load_bundles, open_deal_ids
from connector.store.sql import insert_new
from connector.store.times import from_db
from jobs import budget, pipeline, users
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
                "touched_at": now,
            },
            ("tenant_id", "day"),
        )
    if started is None:
        log.info("sweep of tenant %s for %s already started; not again", tenant_id, day)
        return False
    log.info("sweep of tenant %s for %s: %d open deals", tenant_id, day, total)
    users.queue(rt.redis, tenant_id)  # who left, ahead of the chunks' tasks
    _queue_chunk(rt, tenant_id, day, after="", of_pass=_pass(now))
    return True


FIRST_SYNC_WAIT = timedelta(hours=6)
"""How long the day's sweep waits for an install's setup (provisioning, the initial sync)."""


def first_sync_under_way(tenant_id: str, now: datetime) -> bool:
    """An install's setup is still listing the CRM's deals: a sweep now would sweep the few
    stored so far and count as the day's (the initial sync evaluates every deal anyway). A
    setup stuck for FIRST_SYNC_WAIT no longer holds the sweep back."""
    rt = current()
    with rt.store.tenant(tenant_id) as s:
        setup = s.get(SetupRun, tenant_id)
        if setup is None or setup.status not in ("provisioning", "syncing"):
            return False
        return now - from_db(setup.started_at) < FIRST_SYNC_WAIT


def again(tenant_id: str, day: str) -> bool:
    """The settings changed: the day's sweep evaluates every open deal again under them, so that
    a new threshold shows today, not tomorrow. A run, finished or still going (paused by the
    API allowance, say, or not past its first deal), starts over from the first deal as a new
    pass: the deals it had swept would keep the old settings' alerts till tomorrow, and a chunk
    that has read the old settings may not have written its first deal yet. A chunk of an
    older pass writes nothing more and chains nothing (`_chunk`). None yet: it starts.
    True if a run was (re)started."""
    rt = current()
    # Before anything is read: a save from now on may come too late for this run, so it
    # queues another (connector.queues.request_sweep_again).
    queues.runs_started(rt.redis, tenant_id, queues.sweep_again_mark(day))
    now = rt.clock()
    with rt.store.tenant(tenant_id) as s:
        total = s.scalar(select(func.count()).select_from(DealRow).where(DealRow.status == "open"))
        restarted = s.execute(
            update(SweepRun)
            .where(SweepRun.day == date.fromisoformat(day))
            .values(
                status="running",
                done=0,
                total=total or 0,
                cursor="",
                started_at=now,
                finished_at=None,
                touched_at=now,
            )
        ).rowcount
    if not restarted:
        # None yet: it starts now, unless an install's first sync is still listing the deals
        # (its refreshes evaluate each under the settings in force).
        return not first_sync_under_way(tenant_id, now) and start(tenant_id, day)
    log.info("sweep of tenant %s for %s again (settings changed): %d open deals",
             tenant_id, day, total)  # fmt: skip
    _queue_chunk(rt, tenant_id, day, after="", of_pass=_pass(now))
    return True


def _pass(started_at: datetime) -> str:
    """Which pass of a day's run: when it (re)started. `again` begins a new one; a chunk
    queued or running for an older one read older settings."""
    return started_at.astimezone(UTC).isoformat()


def _queue_chunk(
    rt: Runtime,
    tenant_id: str,
    day: str,
    after: str,
    of_pass: str,
    delay: timedelta | None = None,
) -> None:
    """Queue the chunk of the tenant's sweep that starts after `after` (in `delay`), for the
    run's pass `of_pass`."""
    sweeps = queues.queue(rt.redis, queues.SWEEP)
    call = ("jobs.sweep.chunk", tenant_id, day, after, of_pass)
    if delay is None:
        sweeps.enqueue(*call, job_timeout=SWEEP_TIMEOUT)
    else:
        sweeps.enqueue_in(delay, *call, job_timeout=SWEEP_TIMEOUT)


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


def _waits_for_budget(tenant_id: str, day: str, after: str, of_pass: str) -> bool:
    """Past the tenant's share of its CRM's API allowance the sweep (whose write-backs spend
    it) pauses where it is and looks again in RESUME_SECONDS (jobs/budget.py); the run's row
    says `paused` meanwhile."""
    rt = current()
    tenant = tenants.get_tenant(rt.store, tenant_id)
    why = budget.paused(rt, tenant_id, lambda: adapter_for_tenant(rt, tenant))
    status = "paused" if why else "running"
    with rt.store.tenant(tenant_id) as s:
        run = s.get(SweepRun, (tenant_id, date.fromisoformat(day)))
        # A running sweep's batches mark it as moving; a paused one moves by looking again.
        if run is not None and (why or run.status != status):
            run.status = status
            run.touched_at = rt.clock()
    if why is None:
        return False
    log.info("sweep of tenant %s for %s paused: %s", tenant_id, day, why)
    _queue_chunk(rt, tenant_id, day, after, of_pass, delay=timedelta(seconds=RESUME_SECONDS))
    return True


def chunk(tenant_id: str, day: str, after: str, of_pass: str | None = None) -> None:
    """Sweep the next CHUNK open deals after the run's cursor, then chain the next chunk.

    `after` is where the chunk was queued to start; the run's cursor (the last deal of the
    batches committed) decides: a chunk run again (retried, or resumed by the sweeper while
    the first run was only slow) goes on from there, and never counts a deal twice. A chunk
    queued for an older pass (`of_pass`; none: queued before passes were named) does nothing:
    the settings changed, and the new pass's own chain sweeps every deal."""
    with _no_cycle_collection():
        _chunk(tenant_id, day, after, of_pass)


def _chunk(tenant_id: str, day: str, queued_after: str, queued_pass: str | None) -> None:
    rt = current()
    key = (tenant_id, date.fromisoformat(day))
    with rt.store.tenant(tenant_id) as s:
        run = s.get(SweepRun, key)
        if run is None or run.status == "done":
            log.info("sweep of tenant %s for %s: nothing left to do", tenant_id, day)
            return
        after, of_pass = run.cursor, _pass(from_db(run.started_at))
    if queued_pass not in (None, of_pass):
        log.info("sweep of tenant %s for %s: a chunk of an earlier pass; the settings changed "
                 "and a new pass sweeps every deal", tenant_id, day)  # fmt: skip
        return
    if after != queued_after:
        log.info("sweep of tenant %s for %s goes on after %r (queued after %r)",
                 tenant_id, day, after, queued_after)  # fmt: skip
    if _waits_for_budget(tenant_id, day, after, of_pass):
        return
    settings = tenants.current_settings(rt.store, tenant_id)
    recorded: list[pipeline.Recorded] = []
    advanced: list[bool] = []
    with rt.store.tenant(tenant_id) as s:
        chunk_ids = open_deal_ids(s, after=after, limit=CHUNK)
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
            batch = _Batch(key, of_pass, plan, after=chunk_ids[start - 1] if start else after,
                           ids=ids)  # fmt: skip
            behind.hand(_writer(rt, batch, recorded, advanced), locks.release)
    writebacks = sum(r.writebacks for r in recorded)
    events = sum(r.events for r in recorded)
    if advanced and not advanced[-1]:
        # Another run of this chunk committed these batches first, or a new pass began: that
        # one carries the sweep on.
        log.info("sweep of tenant %s for %s: another run is ahead; this one stops", tenant_id, day)
    elif len(chunk_ids) < CHUNK:
        with rt.store.tenant(tenant_id) as s:
            run = s.get(SweepRun, key)
            run.status = "done"
            run.finished_at = run.touched_at = rt.clock()
        log.info("sweep of tenant %s for %s done", tenant_id, day)
    else:
        _queue_chunk(rt, tenant_id, day, after=chunk_ids[-1], of_pass=of_pass)
    follow_up(rt, tenant_id, writebacks, events)


@dataclass(frozen=True)
class _Batch:
    run: tuple[str, date]
    of_pass: str
    """The pass whose settings evaluated it: written only while the run is still in it."""
    plan: pipeline.Plan | None
    after: str
    """The deal the batch follows: the run's cursor once the batches before it are committed."""
    ids: list[str]


def _writer(
    rt: Runtime, batch: _Batch, recorded: list[pipeline.Recorded], advanced: list[bool]
) -> Callable[[], None]:
    """The write of one batch: its results, and the run's progress if the batch is the next
    one (the run's row is locked while it is read and moved). A batch of an earlier pass
    writes nothing: it was evaluated under settings saved over since, and the new pass
    evaluates its deals again (written later, its old results would win)."""

    def write() -> None:
        tenant_id, day = batch.run
        with rt.store.tenant(tenant_id) as s:
            run = s.get(SweepRun, batch.run, with_for_update=True)
            if _pass(from_db(run.started_at)) != batch.of_pass:
                advanced.append(False)
                log.info("sweep of tenant %s for %s: a batch of an earlier pass, not written",
                         tenant_id, day)  # fmt: skip
                return
            if batch.plan is not None:
                recorded.append(pipeline.apply(s, batch.plan))
            moves = run.cursor == batch.after
            if moves:
                run.cursor = batch.ids[-1]
                run.done += len(batch.ids)
            run.touched_at = rt.clock()
            progress = (run.done, run.total)
        advanced.append(moves)
        log.info("sweep of tenant %s for %s: %d/%d deals", tenant_id, day, *progress)

    return write


STALLED = timedelta(seconds=max(SWEEP_TIMEOUT, RESUME_SECONDS)) + timedelta(minutes=5)
"""A running sweep that has not moved for this long lost its chain of chunks (20 minutes).
Longer than a chunk's timeout and than a budget pause's RESUME_SECONDS, so a live chain is never
doubled but by a chunk queued that long behind others (and a doubled chain stops at its next
batch)."""
RESUMABLE = timedelta(days=1)
"""Older sweeps are not resumed: the next day's has begun."""


def resume_stalled() -> int:
    """Queue the next chunk of every sweep that stopped moving (its chunk failed, or its job was
    lost with Redis or a killed worker), from its cursor; how many. The sweeper calls it."""
    rt = current()
    now = rt.clock()
    moved = func.coalesce(SweepRun.touched_at, SweepRun.started_at)
    with rt.store.all_tenants("the sweeper resumes every tenant's stalled sweep") as s:
        stalled = s.scalars(
            select(SweepRun)
            .join(Tenant, Tenant.id == SweepRun.tenant_id)
            .where(
                SweepRun.status.in_(("running", "paused")),
                moved < now - STALLED,
                SweepRun.started_at > now - RESUMABLE,
                Tenant.status == "active",
            )
        ).all()
        for run in stalled:
            log.warning(
                "sweep of tenant %s for %s stalled at %d/%d deals since %s; resumed",
                run.tenant_id, run.day, run.done, run.total, run.touched_at or run.started_at,
            )  # fmt: skip
            run.touched_at = now  # one resumption per STALLED, however often the sweeper runs
        resumed = [
            (run.tenant_id, run.day.isoformat(), run.cursor, _pass(from_db(run.started_at)))
            for run in stalled
        ]
    for tenant_id, day, cursor, of_pass in resumed:
        _queue_chunk(rt, tenant_id, day, after=cursor, of_pass=of_pass)
    return len(resumed)
