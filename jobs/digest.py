"""The morning digest: one email per rep with alerting deals, once per rep and local day.

`plan(tenant, settings, local)` is called by the scheduler's tick (jobs.schedule) every minute:
from the tenant's digest hour (`digest.hour`, default 8, local), once today's sweep is over (or
when none is due yet, or after MAX_WAIT_HOURS of waiting for it, past midnight for an evening
digest), it puts the day's digest into the outbox under `digest:<day>`, which makes it happen
once whatever the number of crons and ticks. `run(tenant)` then reads the
alerting open deals from the latest evaluations, and proposes one `mail` effect per rep
(`digest:<day>:<rep>`) and per manager of `digest.managers` (`digest:<day>:manager:<email>`),
rendered in the tenant's locale; jobs.notify.send sends them, at most once each. A rep whose
settings say `digest: false`, or with no email address, gets none. A day's digest still unrun
when a later day's is (workers away for days) is closed unsent: it would list the same deals.

Error policy: database and Redis errors propagate (the day's row stays pending and the sweeper
runs it again; the mails already proposed are not proposed twice).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from connector import queues
from connector.notify import render
from connector.notify.email import address
from connector.notify.render import DigestDeal, Section
from connector.store import tenants, work
from connector.store.models import DealRow, Evaluation, OutboxEffect, SweepRun, UserRow
from engine.actions import assignees
from engine.notify_settings import rep_choice
from engine.settings import Settings
from jobs import notify
from jobs.runtime import current

log = logging.getLogger(__name__)

DIGEST = "digest"
MAX_WAIT_HOURS = 4
"""The longest the digest waits past its hour for the day's sweep, then goes with what the
latest evaluations say."""
LATE_TICK_HOURS = 1
"""How long past MAX_WAIT_HOURS a digest whose wait crossed midnight is still planned: the
tick that ends its wait may come after it, and the next day's date is then on the clock."""
MAX_DEALS = 50
"""Deals listed in one email (per rep in a manager's); the rest are counted."""


def plan(tenant_id: str, settings: Settings, local: datetime) -> bool:
    """Put a day's digest into the outbox when it is time; True when this call did."""
    config = settings.document["digest"]
    if not config["enabled"]:
        return False
    day = _digest_day(local, config["hour"])
    if day is None:
        return False
    rt = current()
    key = f"{DIGEST}:{day.isoformat()}"
    with rt.store.tenant(tenant_id) as s:
        if s.scalar(select(OutboxEffect.id).where(OutboxEffect.key == key)) is not None:
            return False
        sweep = s.get(SweepRun, (tenant_id, day))
        now = local.astimezone(UTC)
        sweep_due = now >= _at(day, settings.schedule["sweep_hour"], local)
        unswept = sweep is None or sweep.status in ("running", "paused")
        waited = now - _at(day, config["hour"], local)
        if sweep_due and unswept and waited < timedelta(hours=MAX_WAIT_HOURS):
            # After the sweep, so that the digest lists this morning's alerts; a sweep held
            # back for hours (paused by the CRM's API allowance) delays it that long at most.
            return False
        new = work.propose_many(s, tenant_id, [(key, DIGEST, {"day": day.isoformat()})], rt.clock())
    if new:
        queues.enqueue_once(rt.redis, queues.ACTIONS, "jobs.digest.run", tenant_id, what=DIGEST)
    return bool(new)


def _digest_day(local: datetime, hour: int) -> date | None:
    """The day whose digest may be planned at `local`: today from its hour on; before it,
    yesterday's while its wait for the sweep runs past midnight (a `digest.hour` of 20 or
    later), and LATE_TICK_HOURS beyond so that the tick after the wait still plans it."""
    today = local.date()
    if local.hour >= hour:
        return today
    yesterday = today - timedelta(days=1)
    last_chance = _at(yesterday, hour, local) + timedelta(hours=MAX_WAIT_HOURS + LATE_TICK_HOURS)
    return yesterday if local.astimezone(UTC) < last_chance else None


def _at(day: date, hour: int, local: datetime) -> datetime:
    """`hour` o'clock on `day` in `local`'s zone, in UTC: elapsed times across a daylight
    saving change count real hours."""
    return datetime.combine(day, time(hour), tzinfo=local.tzinfo).astimezone(UTC)


def run(tenant_id: str) -> int:
    """Propose the mails of the tenant's pending digests; how many."""
    rt = current()
    rt.redis.delete(queues.scheduled_key(tenant_id, DIGEST))
    with rt.store.tenant(tenant_id) as s:
        days = [(e.id, e.payload["day"]) for e in work.pending_effects(s, DIGEST, rt.clock())]
    if not days:
        return 0
    *missed, (row_id, day) = sorted(days, key=lambda row: row[1])
    _skip(tenant_id, missed, day)
    settings = tenants.current_settings(rt.store, tenant_id)
    mails = compose(tenant_id, settings, day)
    with rt.store.tenant(tenant_id) as s:
        proposed = work.propose_many(s, tenant_id, mails, rt.clock())
        work.complete(s, [row_id], rt.clock(), {"mails": len(mails)})
    log.info("tenant %s: digest of %s, %d mails", tenant_id, day, len(mails))
    notify.request_send(rt, tenant_id)
    return proposed


def _skip(tenant_id: str, missed: list[tuple[int, str]], latest: str) -> None:
    """Close the digests of days before `latest` still unsent (the workers away for days): each
    would list today's deals again, the same mail once per day missed."""
    if not missed:
        return
    rt = current()
    with rt.store.tenant(tenant_id) as s:
        work.complete(s, [row_id for row_id, _ in missed], rt.clock(),
                      {"mails": 0, "superseded_by": latest})  # fmt: skip
    log.info("tenant %s: digests of %s not sent, superseded by %s's", tenant_id,
             ", ".join(day for _, day in missed), latest)  # fmt: skip


def compose(tenant_id: str, settings: Settings, day: str) -> list[tuple[str, str, dict[str, Any]]]:
    """The day's digest mails as (outbox key, kind, payload)."""
    rt = current()
    locale = settings.locale
    document = settings.document
    by_owner, more = _alerting_deals(tenant_id)
    with rt.store.tenant(tenant_id) as s:
        rows = list(s.scalars(select(UserRow)))
    users = {u.crm_id: (u.name, u.email) for u in rows}
    left = {u.crm_id for u in rows if not u.active}
    mails = []
    for owner, sections in sorted(_personal(by_owner, more, users, left, settings).items()):
        choice = rep_choice(document, owner)
        name, email = users.get(owner, ("", ""))
        to = choice.email or email
        if not choice.digest or not to:
            continue
        rendered = render.digest(name or to, sections, locale)
        mails.append(_mail(f"{DIGEST}:{day}:{owner}", address(name, to), rendered, locale))
    for manager in document["digest"]["managers"]:
        reps = manager.get("reps") or sorted(by_owner)
        sections = [
            Section(users.get(rep, ("", ""))[0] or rep, by_owner[rep], more[rep])
            for rep in sorted(reps, key=lambda r: (users.get(r, ("", ""))[0] or r).casefold())
            if by_owner.get(rep)
        ]
        if not sections:
            continue
        name = manager.get("name") or manager["email"]
        rendered = render.digest(name, sections, locale, team=True)
        key = f"{DIGEST}:{day}:manager:{manager['email'].lower()}"
        mails.append(_mail(key, address(manager.get("name", ""), manager["email"]), rendered,
                           locale))  # fmt: skip
    return mails


def _personal(
    by_owner: dict[str, list[DigestDeal]],
    more: dict[str, int],
    users: dict[str, tuple[str, str]],
    left: set[str],
    settings: Settings,
) -> dict[str, list[Section]]:
    """Each rep's own digest: their deals, then (for `tasks.fallback_owner`) a section per rep
    the CRM deactivated, whose deals they take over. A deactivated rep gets none."""
    personal: dict[str, list[Section]] = defaultdict(list)
    for owner, deals in sorted(by_owner.items()):
        reader = assignees(owner, settings, left)[0]
        if reader == owner:
            personal[owner].insert(0, Section(None, deals, more[owner]))
        elif reader is not None:
            title = users.get(owner, ("", ""))[0] or owner
            personal[reader].append(Section(title, deals, more[owner]))
    return personal


def _alerting_deals(tenant_id: str) -> tuple[dict[str, list[DigestDeal]], dict[str, int]]:
    """Each owner's alerting open deals, the MAX_DEALS first in digest order, and how many
    more each has."""
    rt = current()
    by_owner: dict[str, list[DigestDeal]] = defaultdict(list)
    stmt = (
        select(DealRow.crm_id, DealRow.owner, DealRow.data, Evaluation.result)
        .join(
            Evaluation,
            (Evaluation.tenant_id == DealRow.tenant_id) & (Evaluation.deal_id == DealRow.crm_id),
        )
        .where(DealRow.status == "open", Evaluation.alert_codes != "", DealRow.owner.is_not(None))
    )
    with rt.store.tenant(tenant_id) as s:
        for crm_id, owner, data, result in s.execute(stmt):
            alerts = (result or {}).get("alerts") or []
            if alerts:
                deal = DigestDeal.from_row({**(data or {}), "id": crm_id}, alerts)
                by_owner[owner].append(deal)
    more: dict[str, int] = {}
    for owner, deals in by_owner.items():
        kept = render.ordered(deals)
        by_owner[owner] = kept[:MAX_DEALS]
        more[owner] = max(0, len(kept) - MAX_DEALS)
    return by_owner, more


def _mail(key: str, to: str, rendered: render.Rendered, locale: str) -> tuple[str, str, dict]:
    payload = {"to": [to], "subject": rendered.subject, "text": rendered.text,
               "html": rendered.html, "locale": locale}  # fmt: skip
    return key, notify.MAIL, payload
