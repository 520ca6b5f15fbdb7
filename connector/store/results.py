"""Evaluation results: episodes, the latest evaluation per deal, daily health points, mutes,
and the values last written to the CRM. Every function works on a batch of deals in a few
queries, because the daily sweep records a whole pipeline through them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from connector.store.models import (
    AlertEpisode,
    Evaluation,
    HealthPoint,
    Mute,
    WrittenValues,
)
from connector.store.sql import insert_returning, of_deals, tenant_of, update_many, upsert
from engine.alerts import Mute as EngineMute
from engine.evaluate import Evaluation as EngineEvaluation

TREND_LOOKBACK = timedelta(days=7)
"""The trend compares with the score this long ago."""
HEALTH_KEPT = timedelta(days=180)
"""A deal's daily health points are kept this long (twice the 90 days the API's history
shows): one row a deal a day would otherwise grow for good."""


@dataclass(frozen=True)
class EpisodeRef:
    """An episode as the actions need it (plain values, no ORM state)."""

    id: int
    deal_id: str
    key: str
    code: str
    message: str
    facts: dict[str, Any]


@dataclass
class EpisodeChanges:
    started: list[EpisodeRef] = field(default_factory=list)
    ended: list[EpisodeRef] = field(default_factory=list)


def _of_deals(
    session: Session, model: type, columns: Sequence[str], deal_ids: Sequence[str], *criteria: Any
) -> Any:
    """The rows (`columns` of `model`) of these deals in the session's tenant, in the shape each
    database looks them up fastest (sql.of_deals); the tenant is named here, in Core."""
    table = model.__table__
    stmt = select(*[table.c[name] for name in columns]).where(
        table.c.tenant_id == tenant_of(session), *criteria
    )
    return session.execute(of_deals(session, stmt, table.c.deal_id, deal_ids))


def mutes_for(session: Session, deal_ids: Sequence[str]) -> dict[str, list[EngineMute]]:
    found: dict[str, list[EngineMute]] = defaultdict(list)
    for deal_id, code, until in _of_deals(session, Mute, ("deal_id", "code", "until"), deal_ids):
        found[deal_id].append(EngineMute(code, until))
    return found


def previous_scores(session: Session, deal_ids: Sequence[str], today: date) -> dict[str, int]:
    """Each deal's score a week before `today` (the latest point at or before that day)."""
    day = today - TREND_LOOKBACK
    scores: dict[str, tuple[date, int]] = {}
    days = HealthPoint.__table__.c.day
    for deal_id, when, score in _of_deals(
        session, HealthPoint, ("deal_id", "day", "score"), deal_ids,
        days <= day, days > day - TREND_LOOKBACK,
    ):  # fmt: skip
        if deal_id not in scores or when > scores[deal_id][0]:
            scores[deal_id] = (when, score)
    return {deal_id: score for deal_id, (_, score) in scores.items()}


def previous_grades(session: Session, deal_ids: Sequence[str]) -> dict[str, str]:
    return dict(_of_deals(session, Evaluation, ("deal_id", "grade"), deal_ids).all())


def previous_health(session: Session, deal_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each deal's health as its latest evaluation recorded it (score, grade, components)."""
    rows = _of_deals(session, Evaluation, ("deal_id", "result"), deal_ids)
    return {deal_id: result["health"] for deal_id, result in rows if result.get("health")}


@dataclass
class EpisodePlan:
    """The episode rows a batch's evaluations call for, decided from the open episodes read:
    rows to insert, facts to refresh, episodes to end (`apply_episodes` writes them)."""

    new: list[dict[str, Any]] = field(default_factory=list)
    moved: list[dict[str, Any]] = field(default_factory=list)
    ended: list[EpisodeRef] = field(default_factory=list)


def plan_episodes(
    session: Session,
    tenant_id: str,
    evaluations: Sequence[EngineEvaluation],
    now: datetime,
) -> EpisodePlan:
    """Which episodes open (an alert that starts holding), end (one that stopped) and have their
    facts or message refreshed (one that goes on), read in one query for the whole batch."""
    plan = EpisodePlan()
    open_by_deal: dict[str, dict[str, EpisodeRef]] = defaultdict(dict)
    for episode in _open_episodes(session, [e.deal_id for e in evaluations]):
        open_by_deal[episode.deal_id][episode.key] = episode
    for evaluation in evaluations:
        current = {a.key: a for a in evaluation.alerts}
        still_open = open_by_deal.get(evaluation.deal_id, {})
        for key, alert in current.items():
            episode = still_open.get(key)
            if episode is None:
                plan.new.append(
                    {
                        "tenant_id": tenant_id, "deal_id": evaluation.deal_id, "key": key,
                        "code": alert.code, "started_at": now, "facts": alert.facts,
                        "message": alert.message, "crm_refs": {},
                    }
                )  # fmt: skip
            elif episode.facts != alert.facts or episode.message != alert.message:
                # New words for the same facts: the tenant's locale changed, or a release's.
                plan.moved.append(
                    {"id": episode.id, "facts": alert.facts, "message": alert.message}
                )
        plan.ended.extend(episode for key, episode in still_open.items() if key not in current)
    return plan


def apply_episodes(session: Session, plan: EpisodePlan, now: datetime) -> EpisodeChanges:
    """Write a plan's episodes in a few statements; returns what started and ended, for the
    actions."""
    changes = EpisodeChanges(ended=plan.ended)
    if plan.new:
        # A new open episode is identified by its deal and key: no order is asked of RETURNING.
        returned = insert_returning(session, AlertEpisode, plan.new, ("id", "deal_id", "key"))
        ids = {(deal, key): i for i, deal, key in returned}
        changes.started = [
            EpisodeRef(ids[(r["deal_id"], r["key"])], r["deal_id"], r["key"], r["code"],
                       r["message"], r["facts"])
            for r in plan.new
        ]  # fmt: skip
    update_many(session, AlertEpisode, plan.moved)
    update_many(session, AlertEpisode, [{"id": e.id, "ended_at": now} for e in plan.ended])
    return changes


def _open_episodes(session: Session, deal_ids: Sequence[str]) -> list[EpisodeRef]:
    columns = ("id", "deal_id", "key", "code", "message", "facts")
    ended_at = AlertEpisode.__table__.c.ended_at
    return [
        EpisodeRef(*row)
        for row in _of_deals(session, AlertEpisode, columns, deal_ids, ended_at.is_(None))
    ]


def open_episode_refs(
    session: Session, deal_ids: Sequence[str]
) -> list[tuple[int, str, dict[str, Any]]]:
    """(episode id, deal id, what was made in the CRM for it) of these deals' open episodes."""
    ended_at = AlertEpisode.__table__.c.ended_at
    rows = _of_deals(
        session, AlertEpisode, ("id", "deal_id", "crm_refs"), deal_ids, ended_at.is_(None)
    )
    return [(episode_id, deal_id, refs or {}) for episode_id, deal_id, refs in rows]


def end_episodes_of(session: Session, deal_ids: Sequence[str], now: datetime) -> list[EpisodeRef]:
    """Deleted deals: their open episodes end now, and all their episodes record the deletion."""
    episodes = _open_episodes(session, deal_ids)
    update_many(session, AlertEpisode, [{"id": e.id, "ended_at": now} for e in episodes])
    ids = list(deal_ids)
    session.execute(
        update(AlertEpisode).where(AlertEpisode.deal_id.in_(ids)).values(deal_deleted_at=now)
    )
    session.execute(delete(Evaluation).where(Evaluation.deal_id.in_(ids)))
    session.execute(delete(HealthPoint).where(HealthPoint.deal_id.in_(ids)))
    session.execute(
        delete(WrittenValues).where(
            WrittenValues.object_type == DEAL, WrittenValues.record_id.in_(ids)
        )
    )
    return episodes


def save_evaluations(
    session: Session,
    tenant_id: str,
    evaluations: Sequence[EngineEvaluation],
    fields: Mapping[str, Mapping[str, Any]],
    now: datetime,
    today: date,
) -> None:
    """The latest evaluation per deal with the CRM field values it implies, and today's health
    point (the last one of the day wins)."""
    rows, points = [], []
    for e in evaluations:
        rows.append(
            {
                "tenant_id": tenant_id,
                "deal_id": e.deal_id,
                "result": {**e.to_dict(), "fields": dict(fields[e.deal_id])},
                "score": e.health.score,
                "grade": e.health.grade,
                "alert_codes": " ".join(sorted({a.code for a in e.alerts})),
                "evaluated_at": now,
            }
        )
        points.append(
            {
                "tenant_id": tenant_id,
                "deal_id": e.deal_id,
                "day": today,
                "score": e.health.score,
                "grade": e.health.grade,
            }
        )
    upsert(session, Evaluation, rows, ("tenant_id", "deal_id"))
    upsert(session, HealthPoint, points, ("tenant_id", "deal_id", "day"))
    # Pruned here, by the primary key, deal by deal: every open deal is evaluated daily, and
    # a purge by day alone would walk each tenant's every point.
    session.execute(
        delete(HealthPoint).where(
            HealthPoint.deal_id.in_([e.deal_id for e in evaluations]),
            HealthPoint.day < today - HEALTH_KEPT,
        )
    )


DEAL = "deal"


def latest_fields(session: Session, deal_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The CRM field values of each deal's latest evaluation."""
    return {
        deal_id: result.get("fields", {})
        for deal_id, result in _of_deals(session, Evaluation, ("deal_id", "result"), deal_ids)
    }


def written_values(session: Session, record_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    table = WrittenValues.__table__
    stmt = select(table.c.record_id, table.c["values"]).where(
        table.c.tenant_id == tenant_of(session), table.c.object_type == DEAL
    )
    return dict(session.execute(of_deals(session, stmt, table.c.record_id, record_ids)).all())


def record_written(
    session: Session, tenant_id: str, values: Mapping[str, Mapping[str, Any]], now: datetime
) -> None:
    """Remember what was written, merged over what was known, for the next diff."""
    known = written_values(session, list(values))
    rows = [
        {
            "tenant_id": tenant_id,
            "object_type": DEAL,
            "record_id": record_id,
            "values": {**known.get(record_id, {}), **dict(written)},
            "written_at": now,
        }
        for record_id, written in values.items()
    ]
    upsert(session, WrittenValues, rows, ("tenant_id", "object_type", "record_id"))
