"""Evaluate a batch of bundles and record everything that follows, in one transaction.

Shared by the refresh (a few deals, just pulled) and the sweep (hundreds at a time, from the
snapshot): evaluate with the tenant's settings, mutes and last week's scores; open and close
alert episodes; keep the latest evaluation and today's health point; and put into the outbox a
write-back for each deal whose Deal Radar fields changed and an event for each episode that
started or ended and each grade that changed. The outbox keys make all of it happen once,
however many times a batch is recorded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from connector.store import results, work
from connector.store.models import AlertEpisode
from connector.store.snapshots import delete_deals
from engine.evaluate import Evaluator
from engine.fields import VOLATILE, changed, field_values
from engine.model import Bundle
from engine.settings import Settings

WRITEBACK = "writeback"
EVENT = "event"


@dataclass
class Recorded:
    evaluated: int = 0
    writebacks: int = 0
    events: int = 0


def local_day(evaluator: Evaluator) -> date:
    return date.fromordinal(evaluator.moment.today)


def _digest(values: dict) -> str:
    stable = {k: v for k, v in values.items() if k not in VOLATILE}
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()[:16]


def record(
    session: Session,
    tenant_id: str,
    bundles: Sequence[Bundle],
    settings: Settings,
    now: datetime,
) -> Recorded:
    if not bundles:
        return Recorded()
    evaluator = Evaluator(settings, now)
    today = local_day(evaluator)
    ids = [b.deal.id for b in bundles]
    mutes = results.mutes_for(session, ids)
    previous = results.previous_scores(session, ids, today)
    grades_before = results.previous_grades(session, ids)
    evaluations = [evaluator(b, mutes.get(b.deal.id, ()), previous.get(b.deal.id)) for b in bundles]

    stamp = now.isoformat()
    fields = {e.deal_id: field_values(e, stamp) for e in evaluations}
    changes = results.sync_episodes(session, tenant_id, evaluations, now)
    results.save_evaluations(session, tenant_id, evaluations, fields, now, today)

    out = Recorded(evaluated=len(evaluations))
    known = results.written_values(session, ids)
    for e in evaluations:
        wanted = fields[e.deal_id]
        if changed(wanted, known.get(e.deal_id)):
            # The flush writes the latest evaluation's fields, whatever this row proposed, so a
            # proposal overtaken by a newer evaluation never writes stale values.
            out.writebacks += work.propose(
                session,
                tenant_id,
                key=f"writeback:{e.deal_id}:{_digest(wanted)}",
                kind=WRITEBACK,
                payload={"deal_id": e.deal_id},
                now=now,
            )
        before = grades_before.get(e.deal_id)
        if before is not None and before != e.health.grade:
            out.events += work.propose(
                session,
                tenant_id,
                key=f"health.grade_changed:{e.deal_id}:{today}:{before}:{e.health.grade}",
                kind=EVENT,
                payload={
                    "type": "health.grade_changed",
                    "deal_id": e.deal_id,
                    "from": before,
                    "to": e.health.grade,
                    "health": e.health.to_dict(),
                },
                now=now,
            )
    for kind, episodes in (("alert.started", changes.started), ("alert.ended", changes.ended)):
        for ep in episodes:
            out.events += _episode_event(
                session, tenant_id, kind, ep, now, message=ep.message, facts=ep.facts
            )
    return out


def _episode_event(
    session: Session, tenant_id: str, kind: str, ep: AlertEpisode, now: datetime, **details: Any
) -> bool:
    """Put an episode's start or end in the outbox, once per episode and kind."""
    return work.propose(
        session,
        tenant_id,
        key=f"{kind}:{ep.id}",
        kind=EVENT,
        payload={
            "type": kind,
            "episode_id": ep.id,
            "deal_id": ep.deal_id,
            "code": ep.code,
            "key": ep.key,
            **details,
        },
        now=now,
    )


def forget(session: Session, tenant_id: str, deal_ids: Sequence[str], now: datetime) -> int:
    """Deals deleted in the CRM: end their episodes (an event each) and drop their snapshot."""
    events = sum(
        _episode_event(session, tenant_id, "alert.ended", ep, now, reason="deal deleted")
        for ep in results.end_episodes_of(session, deal_ids, now)
    )
    delete_deals(session, deal_ids)
    return events
