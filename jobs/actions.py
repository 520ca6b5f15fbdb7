"""Act on what the evaluations found: one run per event in the outbox, never one per evaluation.

Events (`alert.started`, `alert.ended`, `health.grade_changed`) are put in the outbox under a
unique key by jobs.pipeline; `dispatch(tenant)` hands each pending one to the handlers for its
type and completes it. HANDLERS is where CRM tasks and notes, notifications and outbound hooks
plug in; until those are built it is empty, and events are completed with no handler recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from connector import queues
from connector.store import work
from jobs import pipeline
from jobs.runtime import current

log = logging.getLogger(__name__)

Handler = Callable[[str, dict[str, Any]], Any]
HANDLERS: dict[str, list[tuple[str, Handler]]] = {}
"""Event type -> [(handler name, handler(tenant_id, payload))]."""


def dispatch(tenant_id: str) -> None:
    rt = current()
    rt.redis.delete(queues.scheduled_key(tenant_id, "dispatch"))
    with rt.store.tenant(tenant_id) as s:
        events = [
            (e.id, dict(e.payload)) for e in work.pending_effects(s, pipeline.EVENT, rt.clock())
        ]
    for event_id, payload in events:
        handled = {}
        for name, handler in HANDLERS.get(payload["type"], []):
            handled[name] = handler(tenant_id, payload)
        with rt.store.tenant(tenant_id) as s:
            work.complete(s, [event_id], rt.clock(), {"handled_by": handled})
    if events:
        log.info("tenant %s: dispatched %d events", tenant_id, len(events))
