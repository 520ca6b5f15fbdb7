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

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from connector.store.models import (
    AlertEpisode,
    Evaluation,
    HealthPoint,
    Mute,
    WrittenValues,
)
from connector.store.sql import same_tenant, update_many, upsert
from engine.alerts import Mute as EngineMute
from engine.evaluate import Evaluation as EngineEvaluation

TREND_LOOKBACK = timedelta(days=7)
"""The trend compares with the score this long ago."""


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


def mutes_for(session: Session, deal_ids: Sequence[str]) -> dict[str, list[EngineMute]]:
    found: dict[str, list[EngineMute]] = defaultdict(list)
    for deal_id, code, until in session.execute(
        select(Mute.deal_id, Mute.code, Mute.until).where(Mute.deal_id.in_(list(deal_ids)))
    ):
        found[deal_id].append(EngineMute(code, until))
    return found


def previous_scores(session: Session, deal_ids: Sequence[str], today: date) -> dict[str, int]:
    """Each deal's score a week before `today` (the latest point at or before that day)."""
    day = today - TREND_LOOKBACK
    scores: dict[str, tuple[date, int]] = {}
    for deal_id, when, score in session.execute(
        select(HealthPoint.deal_id, HealthPoint.day, HealthPoint.score).where(
            HealthPoint.deal_id.in_(list(deal_ids)),
            HealthPoint.day <= day,
            HealthPoint.day > day - TREND_LOOKBACK,
        )
    ):
        if deal_id not in scores or when > scores[deal_id][0]:
            scores[deal_id] = (when, score)
    return {deal_id: score for deal_id, (_, score) in scores.items()}


def previous_grades(session: Session, deal_ids: Sequence[str]) -> dict[str, str]:
    return dict(
        session.execute(
            select(Evaluation.deal_id, Evaluation.grade).where(
                Evaluation.deal_id.in_(list(deal_ids))
            )
        ).all()
    )


def sync_episodes(
    session: Session,
    tenant_id: str,
    evaluations: Sequence[EngineEvaluation],
    now: datetime,
) -> EpisodeChanges:
    """Open an episode for each alert that starts holding, end those that stopped, refresh the
    facts of those that go on, in a few statements for the whole batch. Returns what started
    and ended, for the actions."""
    changes = EpisodeChanges()
    deal_ids = [e.deal_id for e in evaluations]
    columns = (
        AlertEpisode.id, AlertEpisode.deal_id, AlertEpisode.key, AlertEpisode.code,
        AlertEpisode.message, AlertEpisode.facts,
    )  # fmt: skip
    open_by_deal: dict[str, dict[str, EpisodeRef]] = defaultdict(dict)
    for row in session.execute(
        select(*columns).where(AlertEpisode.deal_id.in_(deal_ids), AlertEpisode.ended_at.is_(None))
    ):
        open_by_deal[row.deal_id][row.key] = EpisodeRef(*row)
    new, moved, ended = [], [], []
    for evaluation in evaluations:
        current = {a.key: a for a in evaluation.alerts}
        still_open = open_by_deal.get(evaluation.deal_id, {})
        for key, alert in current.items():
            episode = still_open.get(key)
            if episode is None:
                new.append(
                    {
                        "tenant_id": tenant_id, "deal_id": evaluation.deal_id, "key": key,
                        "code": alert.code, "started_at": now, "facts": alert.facts,
                        "message": alert.message, "crm_refs": {},
                    }
                )  # fmt: skip
            elif episode.facts != alert.facts:
                moved.append({"id": episode.id, "facts": alert.facts, "message": alert.message})
        ended.extend(episode for key, episode in still_open.items() if key not in current)
    if new:
        same_tenant(session, new)
        table = AlertEpisode.__table__
        # No ordering asked of RETURNING: SQLite cannot promise it and would fall back to one
        # statement per row; a new open episode is identified by its deal and key anyway.
        stmt = table.insert().returning(table.c.id, table.c.deal_id, table.c.key)
        ids = {(deal, key): i for i, deal, key in session.connection().execute(stmt, new)}
        changes.started = [
            EpisodeRef(ids[(r["deal_id"], r["key"])], r["deal_id"], r["key"], r["code"],
                       r["message"], r["facts"])
            for r in new
        ]  # fmt: skip
    update_many(session, AlertEpisode, moved)
    update_many(session, AlertEpisode, [{"id": e.id, "ended_at": now} for e in ended])
    changes.ended = ended
    return changes


def end_episodes_of(session: Session, deal_ids: Sequence[str], now: datetime) -> list[EpisodeRef]:
    """Deleted deals: their open episodes end now."""
    episodes = [
        EpisodeRef(*row)
        for row in session.execute(
            select(
                AlertEpisode.id, AlertEpisode.deal_id, AlertEpisode.key, AlertEpisode.code,
                AlertEpisode.message, AlertEpisode.facts,
            ).where(AlertEpisode.deal_id.in_(list(deal_ids)), AlertEpisode.ended_at.is_(None))
        )
    ]  # fmt: skip
    update_many(session, AlertEpisode, [{"id": e.id, "ended_at": now} for e in episodes])
    session.execute(delete(Evaluation).where(Evaluation.deal_id.in_(list(deal_ids))))
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


DEAL = "deal"


def latest_fields(session: Session, deal_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The CRM field values of each deal's latest evaluation."""
    return {
        deal_id: result.get("fields", {})
        for deal_id, result in session.execute(
            select(Evaluation.deal_id, Evaluation.result).where(
                Evaluation.deal_id.in_(list(deal_ids))
            )
        )
    }


def written_values(session: Session, record_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    return dict(
        session.execute(
            select(WrittenValues.record_id, WrittenValues.values).where(
                WrittenValues.object_type == DEAL,
                WrittenValues.record_id.in_(list(record_ids)),
            )
        ).all()
    )


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
