"""Every hour, purge the inbox of processed events older than the dedupe window (and finished
outbound hook deliveries older than a week, jobs.hooks.KEEP_FINISHED, and write-backs and
event batches done or failed more than KEEP_DONE_EFFECTS ago).

The inbox keeps each event's key for work.DEDUPE_WINDOW (7 days) so that a redelivery within it
is refused by the unique key; after that, the events that are done are deleted, tenant by
tenant, in batches of PURGE_BATCH rows with one short transaction each, so that the inbox does
not grow forever and the purge never holds locks the webhook receiver waits for. Pending,
failed and unresolved events are never purged: they are work, or evidence of it. Safe to run
twice: a second run finds nothing old enough left. An uninstalled tenant's events, which
nothing will work on (a reinstall syncs anew), are all deleted.

Once a day (the run of ORPHANS_HOUR, UTC), the rows no deal needs any more go too
(connector.store.orphans): contacts and activities no deal has linked for KEEP_ORPHANS, and the
episodes of deals deleted that long ago. A live deal's ended episodes are its history and stay.
So do the done and failed outbox rows of CRM tasks, notes, mails and digests, kept
KEEP_DONE_EFFECTS, once their keys can never be proposed again (jobs.retention): the task's of
an episode that has ended, a digest's of a day long past; the others stay until then.

The inbox has no foreign key to `tenants` (migration 0010), so a deleted tenant's events stay
behind it (never worked on: the sweeper joins them to their tenant); the purge deletes them all,
whatever their status, in the same batches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.store import orphans, work
from connector.store.models import Tenant
from jobs import hooks, pipeline, retention
from jobs.runtime import Runtime, current

log = logging.getLogger(__name__)

PURGE_BATCH = 1_000
"""Inbox rows deleted per transaction: short locks, steady progress."""
KEEP_DONE_EFFECTS = timedelta(days=30)
"""Finished (done or failed) write-backs and event batches are kept this long after they
finished, then deleted; so are the finished rows of tasks, notes, mails and digests whose keys
can never be proposed again (jobs.retention)."""
KEEP_ORPHANS = timedelta(days=30)
"""Contacts and activities no deal links, and deleted deals' ended episodes, are kept this
long (a deal restored from the CRM's recycle bin within it finds them again), then deleted."""
ORPHANS_HOUR = 3
"""The UTC hour whose run also deletes the orphans: a scan of a tenant's contacts and
activities, once a day rather than hourly."""
UNGUARDED = (pipeline.WRITEBACK, pipeline.EVENT)
"""Outbox kinds whose keys guard nothing once finished: a write-back's names its evaluation time,
an event batch's is born with the state change it reports, once. The keys of tasks, notes,
mails and digests keep those from being made twice: they go once nothing can propose them
again (jobs.retention, daily)."""


def run() -> dict[str, int]:
    """Delete every tenant's processed inbox events received before the dedupe window."""
    rt = current()
    cutoff = rt.clock() - work.DEDUPE_WINDOW
    hooks_before = rt.clock() - hooks.KEEP_FINISHED
    effects_before = rt.clock() - KEEP_DONE_EFFECTS
    daily = rt.clock().astimezone(UTC).hour == ORPHANS_HOUR
    orphans_before = rt.clock() - KEEP_ORPHANS if daily else None
    with rt.store.global_session() as s:
        tenants = list(s.execute(select(Tenant.id, Tenant.status).order_by(Tenant.id)).all())
    purged: dict[str, int] = {}
    for tenant_id, status in tenants:
        if status == "uninstalled":  # never to be worked on: a reinstall syncs anew
            total = _in_batches(rt, tenant_id, lambda s: work.purge_all(s, PURGE_BATCH))
        else:
            total = _in_batches(
                rt, tenant_id, lambda s: work.purge_processed(s, cutoff, PURGE_BATCH)
            )
        # Finished hook deliveries, write-backs and event batches: kept for inspection.
        _in_batches(rt, tenant_id, lambda s: hooks.purge_finished(s, hooks_before, PURGE_BATCH))
        _in_batches(
            rt, tenant_id,
            lambda s: work.purge_finished_effects(s, UNGUARDED, effects_before, PURGE_BATCH),
        )  # fmt: skip
        if orphans_before is not None:
            # An uninstalled tenant's too: its uninstall failed what waited, and a reinstall
            # finds its episodes and keys as they were, under the same rules.
            _purge_finished_effects(rt, tenant_id, effects_before, orphans_before)
            if status != "uninstalled":
                _purge_orphans(rt, tenant_id, orphans_before)
        if total:
            purged[tenant_id] = total
            log.info("inbox purge: tenant %s: %d processed events received before %s",
                     tenant_id, total, cutoff.isoformat())  # fmt: skip
    _purge_tenants_gone(rt)
    return {"tenants": len(purged), "events": sum(purged.values())}


def _purge_finished_effects(
    rt: Runtime, tenant_id: str, before: datetime, orphans_before: datetime
) -> None:
    finished = partial(retention.finished_effects, gone_before=orphans_before)
    deleted = _keyset_batches(rt, tenant_id, finished, before)
    if deleted:
        log.info("purge: tenant %s: %d finished tasks, notes, mails and digests due before %s",
                 tenant_id, deleted, before.isoformat())  # fmt: skip


def _purge_orphans(rt: Runtime, tenant_id: str, before: datetime) -> None:
    counts = {
        what: _keyset_batches(rt, tenant_id, purge, before)
        for what, purge in (
            ("activities", orphans.unlinked_activities),
            ("contacts", orphans.unlinked_contacts),
            ("episodes", orphans.episodes_of_deleted_deals),
        )
    }
    if any(counts.values()):
        log.info("purge: tenant %s: rows no deal needs since %s: %s",
                 tenant_id, before.isoformat(), counts)  # fmt: skip


def _keyset_batches(
    rt: Runtime, tenant_id: str, purge: Callable[..., Any], before: datetime
) -> int:
    """Run a purge by keyset (orphans, finished effects) in short transactions, each going on
    where the last stopped; how many rows it deleted in all."""
    total, after = 0, None
    while True:
        with rt.store.tenant(tenant_id) as s:
            deleted, after = purge(s, before, PURGE_BATCH, after)
        total += deleted
        if after is None:
            return total


def _purge_tenants_gone(rt: Runtime) -> None:
    """Delete every inbox event of the tenants that no longer exist (logged)."""
    with rt.store.all_tenants("the purge finds the inbox rows of deleted tenants") as s:
        gone = work.tenants_gone(s)
    for tenant_id in gone:
        total = _in_batches(rt, tenant_id, lambda s: work.purge_all(s, PURGE_BATCH))
        log.info("inbox purge: tenant %s no longer exists: %d events deleted", tenant_id, total)


def _in_batches(rt: Runtime, tenant_id: str, batch: Callable[[Session], int]) -> int:
    """Run `batch` (deleting up to PURGE_BATCH rows) in one short transaction at a time until
    it deletes fewer; how many in all."""
    total = 0
    while True:
        with rt.store.tenant(tenant_id) as s:
            deleted = batch(s)
        total += deleted
        if deleted < PURGE_BATCH:
            return total
