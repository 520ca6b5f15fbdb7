"""A note on the deal's timeline when its health grade changes, if the tenant wants one.

Off by default (`notes.grade_changed`): the grade is already on the deal as a field a rep can
filter and whose history the CRM keeps, while a note is permanent timeline text that nobody
can dismiss, and a score hovering at a cut point would leave one every day it crosses.

The handler of `health.grade_changed` (registered in jobs/actions.py) proposes the effect
`crm_note:<event key>`, one per deal, day and transition; the runner (jobs/crm_actions.py)
calls `create`, with the adapter's create idempotent by that key.
"""

from __future__ import annotations

import logging
from typing import Any

from connector.store import tenants
from engine.actions import grade_note
from jobs.crm_effects import NOTE, Context, Effect, Outcome, crm_can_act, propose
from jobs.runtime import current

log = logging.getLogger(__name__)


def note_key(event_key: str) -> str:
    return f"{NOTE}:{event_key}"


def on_grade_changed(tenant_id: str, event: dict[str, Any]) -> str:
    settings = tenants.current_settings(current().store, tenant_id)
    if not settings.notes["grade_changed"]:
        return "off"
    if not crm_can_act(tenant_id):
        return "the CRM adapter makes no notes"
    key = note_key(event["key"])
    payload = {
        "deal_id": event["deal_id"],
        "from": event["from"],
        "to": event["to"],
        "health": event["health"],
        "health_before": event.get("health_before"),
    }
    propose(tenant_id, [(key, NOTE, payload)])
    return key


def create(ctx: Context, effect: Effect) -> Outcome:
    p = effect.payload
    body = grade_note(p["from"], p["to"], p.get("health_before"), p["health"], ctx.settings.locale)
    # At the moment the change was seen, not at this try: a retry keeps the timeline's order.
    note_id = ctx.crm.create_note(p["deal_id"], body=body, at=effect.created_at, key=effect.key)
    log.info("tenant %s: note %s on deal %s (%s -> %s)",
             ctx.tenant_id, note_id, p["deal_id"], p["from"], p["to"])  # fmt: skip
    return Outcome({"note_id": note_id})
