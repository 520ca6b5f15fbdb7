"""The nine deal alerts, with the semantics of DESIGN.md's table.

Days are calendar days in the tenant's timezone; "N days or more" fires at N. Interactions are
done emails, calls and meetings; a contact takes part in one as a direct participant (sender,
To recipient, attendee), never as cc. Only open deals get alerts. Each rule is a small function
returning the facts of the alerts it raises (key_role_silent raises one per role); the message
is rendered from the facts, so what a rep reads and what the API returns cannot disagree.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from engine.messages import alert_message
from engine.model import Bundle, role_key
from engine.settings import ALERT_CODES
from engine.signals import Moment, Signals, single_thread
from engine.titles import level_rank, seniority


@dataclass(frozen=True, slots=True)
class Alert:
    code: str
    message: str
    facts: dict[str, Any]

    @property
    def key(self) -> str:
        """What identifies one episode of this alert on a deal: the code, plus the role if any."""
        role = self.facts.get("role")
        return f"{self.code}:{role}" if role else self.code

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "facts": self.facts}


@dataclass(frozen=True, slots=True)
class Mute:
    """A rep's mute of one alert on one deal: hidden before `until`, back on that date."""

    code: str
    until: date


class MuteError(ValueError):
    """A mute that cannot be read; the message names the field."""


def load_mutes(data: Any) -> tuple[Mute, ...]:
    """Mutes from their JSON form: `[{"code": "no_activity", "until": "2026-12-01"}]`."""
    if data is None:
        return ()
    if not isinstance(data, list):
        raise MuteError("mutes: must be a list of {code, until}")
    mutes = []
    for i, m in enumerate(data):
        if not isinstance(m, Mapping) or m.get("code") not in ALERT_CODES:
            code = m.get("code") if isinstance(m, Mapping) else m
            raise MuteError(
                f"mutes[{i}]: field 'code' is {code!r}, expected one of {', '.join(ALERT_CODES)}"
            )
        try:
            until = date.fromisoformat(m.get("until", ""))
        except (TypeError, ValueError):
            raise MuteError(
                f"mutes[{i}]: field 'until' must be a YYYY-MM-DD date, got {m.get('until')!r}"
            ) from None
        mutes.append(Mute(m["code"], until))
    return tuple(mutes)


@dataclass(slots=True)
class Context:
    bundle: Bundle
    moment: Moment
    signals: Signals


Facts = dict[str, Any]
Rule = Callable[[Context, Mapping[str, Any]], Iterable[Facts]]


def _contact_ref(ctx: Context, contact_id: str) -> dict[str, str]:
    c = ctx.bundle.contact(contact_id)
    return {"id": contact_id, "name": c.name if c else ""}


def _no_activity(ctx: Context, cfg: Mapping[str, Any]) -> Iterable[Facts]:
    sig = ctx.signals
    if cfg.get("unless_next_step") and sig.next_step is not None:
        return ()
    last = sig.last_interaction
    ref = last if last is not None else ctx.bundle.deal.created_at.timestamp()
    days = ctx.moment.days_since(ref)
    if days < cfg["days"]:
        return ()
    return (
        {
            "days": days,
            "threshold": cfg["days"],
            "last_interaction_at": None if last is None else ctx.moment.iso(last),
        },
    )


def _no_meeting_scheduled(ctx: Context, cfg: Mapping[str, Any]) -> Iterable[Facts]:
    if ctx.signals.next_meeting is not None:
        return ()
    return ({"scheduled_meetings": 0},)


def _single_threaded(ctx: Context, cfg: Mapping[str, Any]) -> Iterable[Facts]:
    streak = single_thread(ctx.signals.threads)
    if streak is None:
        return ()
    who, start, length = streak
    days = ctx.moment.days_since(start)
    if days < cfg["days"]:
        return ()
    return (
        {
            "days": days,
            "threshold": cfg["days"],
            "contact": _contact_ref(ctx, who),
            "interactions": length,
            "since": ctx.moment.iso(start),
        },
    )


def _key_role_silent(ctx: Context, cfg: Mapping[str, Any]) -> Iterable[Facts]:
    contacts = [c for c in ctx.bundle.contacts if c.role_keys]
    if not contacts:
        return ()
    found = []
    last_by_contact = ctx.signals.last_by_contact
    created = None
    for role, wanted in zip(cfg["roles"], cfg["role_keys"], strict=True):
        holders = [c for c in contacts if wanted in c.role_keys]
        if not holders:
            continue
        heard = [last_by_contact[c.id] for c in holders if c.id in last_by_contact]
        last = max(heard) if heard else None
        if last is None and created is None:
            created = ctx.bundle.deal.created_at.timestamp()
        days = ctx.moment.days_since(last if last is not None else created)
        if days >= cfg["days"]:
            found.append(
                {
                    "role": role,
                    "contacts": [{"id": c.id, "name": c.name} for c in holders],
                    "days": days,
                    "threshold": cfg["days"],
                    "last_interaction_at": None if last is None else ctx.moment.iso(last),
                }
            )
    return found


def _powermap_gap(ctx: Context, cfg: Mapping[str, Any]) -> Iterable[Facts]:
    close = ctx.bundle.deal.close_date
    if close is None:
        return ()
    days_to_close = close.toordinal() - ctx.moment.today
    # A passed close date is close_date_passed's business; this alert looks at the run-up.
    if days_to_close < 0 or days_to_close > cfg["days_to_close"]:
        return ()
    extra = cfg.get("titles")
    active = ctx.signals.last_by_contact
    highest = None
    for c in ctx.bundle.contacts:
        if c.id in active:
            level = seniority(c.title, extra)
            if level_rank(level) > level_rank(highest):
                highest = level
    if level_rank(highest) >= level_rank(cfg["min_level"]):
        return ()
    return (
        {
            "days_to_close": days_to_close,
            "threshold": cfg["days_to_close"],
            "level": cfg["min_level"],
            "highest_level": highest,
            "active_contacts": sum(1 for c in ctx.bundle.contacts if c.id in active),
            "close_date": close.isoformat(),
        },
    )


def _stage_threshold(stage: str, stage_name: str | None, cfg: Mapping[str, Any]) -> int:
    """The days a deal may spend in its stage: a per-stage threshold, else the alert's days.

    A stage is keyed by its id or by its name, as the admin reads it in the CRM. The pipeline's
    thresholds (the first layer of a ChainMap, engine.settings) win over the organisation's
    however either is keyed; within one layer the id wins over the name.
    """
    stages = cfg.get("stages", {})
    layers = stages.maps if isinstance(stages, ChainMap) else (stages,)
    for layer in layers:
        for key in (stage, stage_name):
            if key is not None and key in layer:
                return layer[key]
    return cfg["days"]


def _stuck_in_stage(ctx: Context, cfg: Mapping[str, Any]) -> Iterable[Facts]:
    deal = ctx.bundle.deal
    threshold = _stage_threshold(deal.stage, deal.stage_name, cfg)
    entered = deal.stage_entered_at.timestamp()
    days = ctx.moment.days_since(entered)
    if days < threshold:
        return ()
    return (
        {
            "stage": deal.stage,
            "stage_name": deal.stage_name or deal.stage,
            "days": days,
            "threshold": threshold,
            "stage_entered_at": ctx.moment.iso(entered),
        },
    )


def _close_date_passed(ctx: Context, cfg: Mapping[str, Any]) -> Iterable[Facts]:
    close = ctx.bundle.deal.close_date
    if close is None:
        return ()
    overdue = ctx.moment.today - close.toordinal()
    if overdue <= 0:
        return ()
    return ({"close_date": close.isoformat(), "days": overdue},)


def _amount_missing(ctx: Context, cfg: Mapping[str, Any]) -> Iterable[Facts]:
    return ({"amount": None},) if ctx.bundle.deal.amount is None else ()


def _deal_too_old(ctx: Context, cfg: Mapping[str, Any]) -> Iterable[Facts]:
    created = ctx.bundle.deal.created_at.timestamp()
    days = ctx.moment.days_since(created)
    if days < cfg["days"]:
        return ()
    return ({"days": days, "threshold": cfg["days"], "created_at": ctx.moment.iso(created)},)


RULES: dict[str, Rule] = {
    "no_activity": _no_activity,
    "no_meeting_scheduled": _no_meeting_scheduled,
    "single_threaded": _single_threaded,
    "key_role_silent": _key_role_silent,
    "powermap_gap": _powermap_gap,
    "stuck_in_stage": _stuck_in_stage,
    "close_date_passed": _close_date_passed,
    "amount_missing": _amount_missing,
    "deal_too_old": _deal_too_old,
}
assert tuple(RULES) == ALERT_CODES, "every alert code has exactly one rule, in display order"


def _roles_once(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Each role once as compared ("Champion", "champion"): two spellings of one role would
    raise two alerts, and two tasks, for the same silence. The first spelling names it."""
    keyed = {}
    for role in cfg["roles"]:
        keyed.setdefault(role_key(role), role)
    return {**cfg, "roles": list(keyed.values()), "role_keys": list(keyed)}


_PREPARE: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "key_role_silent": _roles_once,
}
"""Work a rule's settings need once per pipeline rather than once per deal."""

Plan = tuple[tuple[str, Rule, Mapping[str, Any]], ...]


def plan_alerts(alert_settings: Mapping[str, Mapping[str, Any]]) -> Plan:
    """The enabled rules, in display order, with their (prepared) settings."""
    return tuple(
        (code, rule, _PREPARE.get(code, dict)(alert_settings[code]))
        for code, rule in RULES.items()
        if alert_settings[code]["enabled"]
    )


def raise_alerts(
    ctx: Context,
    plan: Plan,
    locale: str,
    mutes: Iterable[Mute] = (),
) -> list[Alert]:
    """The alerts that hold for an open deal, in display order, muted ones left out."""
    if ctx.bundle.deal.status != "open":
        return []
    today = ctx.moment.today
    muted = {m.code for m in mutes if today < m.until.toordinal()} if mutes else ()
    alerts = []
    for code, rule, cfg in plan:
        if code in muted:
            continue
        for facts in rule(ctx, cfg):
            alerts.append(Alert(code, alert_message(code, facts, locale), facts))
    return alerts
