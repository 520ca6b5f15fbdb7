"""Relationship health: a 0..100 score, a good / fair / poor grade and a trend.

The score adds two parts, each measured against the tenant's expected communication frequency
(an interval P in days: 1, 3.5, 7, 14 or 30):

- recency, up to 50 points: for each activity kind, the latest done activity earns
  `min(1, weight / 6)` of the points if it is at most P days old, halving for every further P
  days; the best kind counts. A weight below the default 6 thus earns less, never more.
- frequency, up to 50 points: every done activity counts `weight / 6`, faded by half every P
  days of age; the sum, against a target of 1.5 (what steady contact at the expected frequency
  keeps up), gives the points, capped at 50.

Done emails, calls, meetings and tasks count, and so does a meeting still scheduled whose start
has passed (engine.signals takes it as held); notes, other scheduled work and anything dated
after `now` do not. More activity, more recent activity and better-weighted activity never lower
the score (property tests hold the engine to it). The README works an example through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.settings import FREQUENCY_DAYS
from engine.signals import HEALTH_KINDS, Signals

RECENCY_POINTS = 50.0
"""The most the latest activity can earn."""
FREQUENCY_POINTS = 50.0
"""The most the amount of recent activity can earn."""
REFERENCE_WEIGHT = 6.0
"""The default weight: an activity of this weight counts as one."""
FREQUENCY_TARGET = 1.5
"""Faded, weighted activities that earn the full frequency points (contact at the expected pace
keeps the sum between 1 and 2)."""
TREND_DELTA = 5
"""Points a score must move against the previous one to be improving or declining."""


@dataclass(frozen=True, slots=True)
class Health:
    score: int
    grade: str
    trend: str | None
    components: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "grade": self.grade,
            "trend": self.trend,
            "components": self.components,
        }


def grade_for(score: int, good_from: int, fair_from: int) -> str:
    if score >= good_from:
        return "good"
    return "fair" if score >= fair_from else "poor"


def trend_for(score: int, previous: int | None) -> str | None:
    """Against the score a week earlier; None when there is nothing to compare with."""
    if previous is None:
        return None
    if score - previous >= TREND_DELTA:
        return "improving"
    if previous - score >= TREND_DELTA:
        return "declining"
    return "steady"


def half_life_days(health_settings: Mapping[str, Any]) -> float:
    """Activity fades by half every expected interval; the scan needs it up front."""
    return FREQUENCY_DAYS[health_settings["expected_frequency"]]


def score_health(
    signals: Signals,
    now_ts: float,
    health_settings: Mapping[str, Any],
    previous_score: int | None = None,
) -> Health:
    period = FREQUENCY_DAYS[health_settings["expected_frequency"]]
    weights = health_settings["weights"]

    best = 0.0
    days_since_last = None
    for kind, ts in signals.last_by_kind.items():
        age = max(0.0, (now_ts - ts) / 86400.0)
        if days_since_last is None or age < days_since_last:
            days_since_last = age
        fresh = 1.0 if age <= period else 0.5 ** ((age - period) / period)
        best = max(best, min(1.0, weights[kind] / REFERENCE_WEIGHT) * fresh)
    recency = RECENCY_POINTS * best

    weighted = sum(weights[k] / REFERENCE_WEIGHT * signals.decayed[k] for k in HEALTH_KINDS)
    frequency = FREQUENCY_POINTS * min(1.0, weighted / FREQUENCY_TARGET)

    # Round half up: monotone, and 59.5 reads as 60 to a person.
    score = min(100, max(0, int(recency + frequency + 0.5)))
    return Health(
        score=score,
        grade=grade_for(score, health_settings["good_from"], health_settings["fair_from"]),
        trend=trend_for(score, previous_score),
        components={
            "recency": {
                "points": round(recency, 1),
                "max": int(RECENCY_POINTS),
                "days_since_last": None if days_since_last is None else round(days_since_last, 1),
                "expected_every_days": period,
            },
            "frequency": {
                "points": round(frequency, 1),
                "max": int(FREQUENCY_POINTS),
                "weighted_activities": round(weighted, 2),
                "target": FREQUENCY_TARGET,
            },
            "activities": dict(signals.counts),
            "weights": dict(weights),
        },
    )
