"""Evaluate a batch of bundles and record everything that follows.

Shared by the refresh (a few deals, just pulled) and the sweep (hundreds at a time, from the
snapshot): evaluate with the tenant's settings, mutes and last week's scores; open and close
alert episodes; keep the latest evaluation and today's health point; and put into the outbox a
write-back for each deal whose Deal Radar fields changed and an event for each episode that
started or ended and each grade that changed. The outbox keys make all of it happen once,
however many times a batch is recorded.

`record` does it all in the session's one transaction (the refresh). The sweep calls its two
halves itself: `prepare` reads and decides, `apply` writes, in a later transaction on another
thread while the next batch is prepared (jobs/sweep.py); the batch's deal locks, held from
before `prepare` until `apply` commits, keep any other job from recording those deals between.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy.orm import Session

from connector.store import results, work
from connector.store.models import Tenant
from connector.store.results import EpisodeRef
from connector.store.snapshots import delete_deals
from connector.store.times import from_db
from engine.evaluate import Evaluation, Evaluator
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
    # orjson rather than the standard library: the sweep digests every open deal's values daily.
    stable = {k: v for k, v in values.items() if k not in VOLATILE}
    return hashlib.sha256(orjson.dumps(stable, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


@dataclass
class Plan:
    """A batch evaluated, with everything its recording needs read from the store: what
    `prepare` decided and `apply` writes. Between the two the batch's deals must stay locked,
    so that nothing else records them meanwhile."""

    tenant_id: str
    now: datetime
    today: date
    evaluations: list[Evaluation]
    fields: dict[str, dict[str, Any]]
    episodes: results.EpisodePlan
    to_write: list[str]
    grade_events: list[dict[str, Any]]
    backlog: set[str]


def record(
    session: Session,
    tenant_id: str,
    bundles: Sequence[Bundle],
    settings: Settings,
    now: datetime,
) -> Recorded:
    """Evaluate the bundles and record what follows, in the session's one transaction."""
    plan = prepare(session, tenant_id, bundles, settings, now)
    return apply(session, plan) if plan is not None else Recorded()


def prepare(
    session: Session,
    tenant_id: str,
    bundles: Sequence[Bundle],
    settings: Settings,
    now: datetime,
) -> Plan | None:
    """Evaluate the bundles and decide what to record, reading only (None: no bundles)."""
    if not bundles:
        return None
    evaluator = Evaluator(settings, now)
    today = local_day(evaluator)
    ids = [b.deal.id for b in bundles]
    mutes = results.mutes_for(session, ids)
    previous = results.previous_scores(session, ids, today)
    grades_before = results.previous_grades(session, ids)
    evaluations = [evaluator(b, mutes.get(b.deal.id, ()), previous.get(b.deal.id)) for b in bundles]

    backlog = _backlog(session, tenant_id, bundles, grades_before)
    regraded = [
        e.deal_id for e in evaluations if grades_before.get(e.deal_id) not in (None, e.health.grade)
    ]
    # Read before apply's save_evaluations overwrites them; only the few deals whose grade moved.
    health_before = results.previous_health(session, regraded) if regraded else {}

    stamp = now.isoformat()
    fields = {e.deal_id: field_values(e, stamp) for e in evaluations}
    known = results.written_values(session, ids)
    to_write: list[str] = []
    grade_events: list[dict[str, Any]] = []
    for e in evaluations:
        wanted = fields[e.deal_id]
        if changed(wanted, known.get(e.deal_id)):
            to_write.append(f"{e.deal_id}:{_digest(wanted)}")
        before = grades_before.get(e.deal_id)
        if before is not None and before != e.health.grade:
            grade_events.append(
                {
                    "key": f"health.grade_changed:{e.deal_id}:{today}:{before}:{e.health.grade}",
                    "type": "health.grade_changed",
                    "deal_id": e.deal_id,
                    "from": before,
                    "to": e.health.grade,
                    "health": e.health.to_dict(),
                    "health_before": health_before.get(e.deal_id),
                }
            )
    return Plan(
        tenant_id=tenant_id,
        now=now,
        today=today,
        evaluations=evaluations,
        fields=fields,
        episodes=results.plan_episodes(session, tenant_id, evaluations, now),
        to_write=to_write,
        grade_events=grade_events,
        backlog=backlog,
    )


def apply(session: Session, plan: Plan) -> Recorded:
    """Write what `prepare` decided: episodes, evaluations, health points, and the outbox's
    write-back and events."""
    tenant_id, now = plan.tenant_id, plan.now
    changes = results.apply_episodes(session, plan.episodes, now)
    results.save_evaluations(session, tenant_id, plan.evaluations, plan.fields, now, plan.today)
    events = list(plan.grade_events)
    events.extend(
        _episode_event("alert.started", ep, message=ep.message, facts=ep.facts,
                       **({"backlog": True} if ep.deal_id in plan.backlog else {}))
        for ep in changes.started
    )  # fmt: skip
    events.extend(
        _episode_event("alert.ended", ep, message=ep.message, facts=ep.facts)
        for ep in changes.ended
    )
    return Recorded(
        evaluated=len(plan.evaluations),
        writebacks=_propose_writebacks(session, tenant_id, plan.to_write, now),
        events=_propose_events(session, tenant_id, events, now),
    )


def _backlog(
    session: Session, tenant_id: str, bundles: Sequence[Bundle], grades_before: dict[str, str]
) -> set[str]:
    """Deals Deal Radar looks at for the first time although they were in the CRM before the
    tenant was installed: the alerts they start with are the install's backlog, which tasks
    and instant notifications leave to the digest (a first sync would otherwise drop hundreds
    of tasks on the team at once)."""
    first_look = [b for b in bundles if b.deal.id not in grades_before]
    if not first_look:
        return set()
    tenant = session.get(Tenant, tenant_id)
    installed_at = from_db(tenant.created_at) if tenant is not None else None
    if installed_at is None:
        return set()
    return {b.deal.id for b in first_look if b.deal.created_at < installed_at}


def _batch_key(prefix: str, parts: Sequence[str]) -> str:
    return f"{prefix}:{hashlib.sha256(chr(10).join(sorted(parts)).encode()).hexdigest()[:24]}"


def _propose_writebacks(
    session: Session, tenant_id: str, deal_digests: Sequence[str], now: datetime
) -> int:
    """One outbox row for the batch's deals whose fields changed. The flush writes each deal's
    latest evaluation, whatever the row says, so an overtaken proposal never writes stale values.
    The key names the deals, their values and the evaluation's time: a deal back to values it
    had before (an amount cleared, entered, cleared again; a mute, lifted, set again) is written
    again, where deals and values alone matched the first, done, row and proposed nothing."""
    if not deal_digests:
        return 0
    deal_ids = sorted(d.split(":", 1)[0] for d in deal_digests)
    key = _batch_key("writeback", [*deal_digests, f"at:{now.isoformat()}"])
    new = work.propose_many(session, tenant_id, [(key, WRITEBACK, {"deal_ids": deal_ids})], now)
    return len(deal_ids) if new else 0


def _propose_events(
    session: Session, tenant_id: str, events: Sequence[dict[str, Any]], now: datetime
) -> int:
    """One outbox row for the batch's events. Each event is born in the same transaction as the
    state change it reports (an episode opened or closed, a grade moved), so it is recorded
    exactly once; each keeps its own key for the actions downstream."""
    if not events:
        return 0
    key = _batch_key("events", [e["key"] for e in events])
    new = work.propose_many(session, tenant_id, [(key, EVENT, {"events": list(events)})], now)
    return len(events) if new else 0


def propose_overtaken(
    session: Session, tenant_id: str, read: dict[str, dict], now: datetime
) -> int:
    """Deals re-evaluated while a flush wrote the values it had `read` (by deal): a refresh
    meanwhile diffed against what was written before the flush, and if its values matched
    those it proposed nothing, so the flush's older values would stay in the CRM."""
    if not read:
        return 0
    latest = results.latest_fields(session, list(read))
    stale = [
        f"{d}:{_digest(values)}"
        for d, values in latest.items()
        if d in read and changed(values, read[d])
    ]
    return _propose_writebacks(session, tenant_id, stale, now)


def _episode_event(kind: str, ep: EpisodeRef, **details: Any) -> dict[str, Any]:
    """An episode's start or end, keyed once per episode and kind."""
    return {
        "key": f"{kind}:{ep.id}",
        "type": kind,
        "episode_id": ep.id,
        "deal_id": ep.deal_id,
        "code": ep.code,
        "alert_key": ep.key,
        **details,
    }


def forget(session: Session, tenant_id: str, deal_ids: Sequence[str], now: datetime) -> int:
    """Deals deleted in the CRM: end their episodes (an event each) and drop their snapshot."""
    ended = results.end_episodes_of(session, deal_ids, now)
    events = [_episode_event("alert.ended", ep, reason="deal deleted") for ep in ended]
    delete_deals(session, deal_ids)
    return _propose_events(session, tenant_id, events, now)
