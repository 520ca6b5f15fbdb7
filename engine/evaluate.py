"""Evaluate a bundle: its alerts and its relationship health, as of an injected `now`.

`Evaluator(settings, now)` does the per-tenant work once (today's date in the tenant's
timezone, the resolved thresholds per pipeline) and is then called once per deal, which is what
the daily sweep and `dealradar evaluate --jsonl` do; `evaluate()` is the one-off form.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.alerts import Alert, Context, Mute, Plan, plan_alerts, raise_alerts
from engine.health import Health, half_life_days, score_health
from engine.model import Bundle
from engine.settings import Settings
from engine.signals import Moment, scan


@dataclass(frozen=True, slots=True)
class Evaluation:
    deal_id: str
    alerts: list[Alert]
    health: Health
    days_since_interaction: int | None = None
    """Calendar days since the last interaction, in the tenant's timezone (None: never)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "deal_id": self.deal_id,
            "alerts": [a.to_dict() for a in self.alerts],
            "health": self.health.to_dict(),
        }


class Evaluator:
    """Evaluates many bundles for one tenant at one instant."""

    def __init__(self, settings: Settings, now: datetime) -> None:
        self.settings = settings
        self.moment = Moment(now=now, zone=settings.zone)
        self._health = settings.health
        self._half_life = half_life_days(settings.health)
        self._locale = settings.locale
        self._plans: dict[str, Plan] = {}

    def __call__(
        self,
        bundle: Bundle,
        mutes: Iterable[Mute] = (),
        previous_score: int | None = None,
    ) -> Evaluation:
        moment = self.moment
        signals = scan(bundle.activities, moment.now_ts, self._half_life)
        ctx = Context(bundle=bundle, moment=moment, signals=signals)
        alerts = raise_alerts(ctx, self._plan(bundle.deal.pipeline), self._locale, mutes)
        health = score_health(signals, moment.now_ts, self._health, previous_score)
        last = signals.last_interaction
        return Evaluation(
            deal_id=bundle.deal.id,
            alerts=alerts,
            health=health,
            days_since_interaction=None if last is None else moment.days_since(last),
        )

    def _plan(self, pipeline: str) -> Plan:
        plan = self._plans.get(pipeline)
        if plan is None:
            plan = self._plans[pipeline] = plan_alerts(self.settings.alerts_for(pipeline))
        return plan


def evaluate(
    bundle: Bundle,
    settings: Settings,
    now: datetime,
    *,
    mutes: Iterable[Mute] = (),
    previous_score: int | None = None,
) -> Evaluation:
    """Alerts and health for one bundle as of `now` (an aware datetime)."""
    return Evaluator(settings, now)(bundle, mutes, previous_score)
