"""Act on what the evaluations found: one run per event in the outbox, never one per evaluation.

Events (`alert.started`, `alert.ended`, `health.grade_changed`) are put in the outbox by
jobs.pipeline, one row per evaluated batch, each event with its own key (an episode and a
transition); `dispatch(tenant)` hands each event of each pending row to the handlers for its
type and completes the row. Handlers key their own effects by the event's key. HANDLERS is
where CRM tasks and notes, notifications and outbound hooks plug in; an event with no handler is
completed with none recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from connector import queues
from connector.store import work
from jobs import crm_notes, crm_tasks, hooks, notify, pipeline
from jobs.runtime import current

log = logging.getLogger(__name__)

Handler = Callable[[str, dict[str, Any]], Any]
HANDLERS: dict[str, list[tuple[str, Handler]]] = {}
"""Event type -> [(handler name, handler(tenant_id, payload))]."""
for _type in ("alert.started", "alert.ended", "health.grade_changed"):
    # Rep notifications and outbound REST hooks take every event type; each filters by the
    # tenant's settings or subscriptions, and keys what it proposes by the event's key.
    HANDLERS.setdefault(_type, []).extend([("notify", notify.on_event), ("hooks", hooks.on_event)])

# CRM tasks per alert episode and notes on grade changes: each proposes an outbox effect that
# jobs/crm_actions.py carries out.
HANDLERS.setdefault("alert.started", []).append(("crm_task", crm_tasks.on_started))
HANDLERS.setdefault("alert.ended", []).append(("crm_task", crm_tasks.on_ended))
HANDLERS.setdefault("health.grade_changed", []).append(("crm_note", crm_notes.on_grade_changed))


def dispatch(tenant_id: str) -> None:
    rt = current()
    rt.redis.delete(queues.scheduled_key(tenant_id, "dispatch"))
    with rt.store.tenant(tenant_id) as s:
        pending = work.pending_effects(s, pipeline.EVENT, rt.clock())
        rows = [(row.id, row.payload["events"]) for row in pending]
    for row_id, events in rows:
        handled: dict[str, dict[str, Any]] = {}
        for event in events:
            for name, handler in HANDLERS.get(event["type"], []):
                handled.setdefault(event["key"], {})[name] = handler(tenant_id, event)
        with rt.store.tenant(tenant_id) as s:
            work.complete(s, [row_id], rt.clock(), {"handled_by": handled})
    if rows:
        log.info("tenant %s: dispatched %d events", tenant_id, sum(len(e) for _, e in rows))
