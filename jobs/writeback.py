"""Write Deal Radar's fields back into the CRM: only what changed, batched, once.

`flush(tenant)` takes the tenant's pending write-backs from the outbox, diffs each deal's latest
evaluation against what was last written, sends the differences in one adapter call (the
adapter batches to the CRM's limits), then records what was written and completes the rows.
A crash between the CRM call and the commit means the same values are written again, which a
CRM field takes without harm. Errors follow jobs.policy like the refresh.
"""

from __future__ import annotations

import logging

from adapters.base import WriteResult
from adapters.errors import CrmError
from connector import queues
from connector.store import results, tenants, work
from engine.fields import changed
from jobs import pipeline, policy, refresh
from jobs.adapters import adapter_for_tenant
from jobs.runtime import current

log = logging.getLogger(__name__)


def flush(tenant_id: str) -> None:
    rt = current()
    r = rt.redis
    r.delete(queues.scheduled_key(tenant_id, "flush"))
    # Not thread-local: kept alive from another thread while a long flush writes.
    lock = r.lock(
        f"dealradar:lock:flush:{tenant_id}", timeout=rt.lock_seconds, blocking=False,
        thread_local=False,
    )  # fmt: skip
    if not lock.acquire():
        # Another flush is writing; try again once it is done rather than write twice.
        queues.enqueue_once(
            r, queues.WRITEBACK, "jobs.writeback.flush", tenant_id, what="flush", delay=5
        )
        return
    try:
        # Thousands of deals (a sweep's, Sell's one call per deal) may outlive the lock's life.
        with queues.kept_alive(lock.reacquire, rt.lock_seconds / 3):
            _flush(tenant_id)
    finally:
        lock.release()


def _flush(tenant_id: str) -> None:
    rt = current()
    tenant = tenants.get_tenant(rt.store, tenant_id)
    if tenant.status != "active":
        return
    now = rt.clock()
    with rt.store.tenant(tenant_id) as s:
        rows = work.pending_effects(s, pipeline.WRITEBACK, due_before=now)
        deal_ids = sorted({deal for row in rows for deal in row.payload["deal_ids"]})
        latest = results.latest_fields(s, deal_ids)
        known = results.written_values(s, deal_ids)
    row_ids = [row.id for row in rows]
    batch = {d: diff for d in deal_ids if d in latest if (diff := changed(latest[d], known.get(d)))}
    outcome = None
    if batch:
        try:
            outcome = adapter_for_tenant(rt, tenant).write_back(batch)
        except CrmError as exc:
            _retry_or_stop(tenant_id, row_ids, exc)
            return
    written, unwritten = _written(batch, outcome)
    gone = sorted(outcome.deleted) if isinstance(outcome, WriteResult) else []
    with rt.store.tenant(tenant_id) as s:
        results.record_written(s, tenant_id, written, rt.clock())
        work.complete(s, row_ids, rt.clock(), {"written": sorted(written), **unwritten})
        read = {d: latest[d] for d in written}
        again = pipeline.propose_overtaken(s, tenant_id, read, rt.clock())
        # Deleted in the CRM (which may send no event for it): forgotten as a pull would.
        events = pipeline.forget(s, tenant_id, gone, rt.clock()) if gone else 0
    policy.forget_attempts(rt.redis, _attempts_key(tenant_id))
    forgotten = f"; {len(gone)} deleted in the CRM, forgotten" if gone else ""
    log.info("tenant %s: wrote %d deals (%d outbox rows)%s",
             tenant_id, len(written), len(row_ids), forgotten)  # fmt: skip
    refresh.follow_up(rt, tenant_id, again, events)


def _written(batch: dict[str, dict], outcome: object) -> tuple[dict[str, dict], dict[str, object]]:
    """The values the CRM took, and what it did not (for the outbox row's result). Values not
    recorded as written differ from the next evaluation's, so a later flush sends them again;
    a refused deal is not retried in a loop meanwhile."""
    if not isinstance(outcome, WriteResult):
        return batch, {}
    written = {}
    for deal_id, values in batch.items():
        if deal_id in outcome.failed:
            continue
        skipped = set(outcome.skipped_fields.get(deal_id, ()))
        kept = {k: v for k, v in values.items() if k not in skipped}
        if kept:
            written[deal_id] = kept
    unwritten: dict[str, object] = {}
    if outcome.failed:
        unwritten["failed"] = dict(outcome.failed)
    if outcome.skipped_fields:
        unwritten["skipped_fields"] = {k: list(v) for k, v in outcome.skipped_fields.items()}
    return written, unwritten


def _retry_or_stop(tenant_id: str, row_ids: list[int], error: CrmError) -> None:
    """Follow jobs.policy: retry after its backoff, suspend the tenant, or end the rows with
    the reason when retrying cannot help. Values not written are not recorded as written, so
    the deals' next write-back sends them again."""
    rt = current()
    decision = policy.decide_attempt(rt.redis, _attempts_key(tenant_id), error)
    if decision.action == "suspend":
        log.error("tenant %s suspended: %s", tenant_id, decision.reason)
        tenants.set_status(rt.store, tenant_id, "suspended", decision.reason, rt.clock())
        return
    reason = f"write-back: {decision.reason}"
    with rt.store.tenant(tenant_id) as s:
        if decision.action == "deleted":
            work.complete(s, row_ids, rt.clock(), {"written": [], "not_found": decision.reason})
        else:
            work.record_failure(s, row_ids, reason, rt.clock(), final=decision.action == "fail")
    if decision.action != "retry":
        log.error("tenant %s: %s; %d outbox rows end %s", tenant_id, reason, len(row_ids),
                  "done" if decision.action == "deleted" else "failed")  # fmt: skip
        return
    log.warning("tenant %s: %s; retrying in %.1f s", tenant_id, reason, decision.delay)
    queues.enqueue_once(
        rt.redis, queues.WRITEBACK, "jobs.writeback.flush", tenant_id, what="flush",
        delay=decision.delay,
    )  # fmt: skip


def _attempts_key(tenant_id: str) -> str:
    return f"dealradar:attempts:flush:{tenant_id}"
