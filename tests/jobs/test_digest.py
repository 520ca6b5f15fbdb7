"""The morning digest, end to end: the tick plans it at the tenant's local hour after the sweep,
the sweep's evaluations fill it, and each rep gets one email a day (an .eml in the outbox here),
most valuable and most urgent deals first, in the tenant's locale."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from redis import Redis
from sqlalchemy import select

from connector.store import tenants
from connector.store.models import OutboxEffect, SweepRun, UserRow
from connector.store.snapshots import save_bundles
from engine.model import load_bundle
from jobs import digest, pipeline, schedule
from jobs.runtime import Runtime
from tests.jobs.conftest import EXAMPLES, Clock, run_jobs

CLAIRE = {"id": "u-claire", "name": "Claire Martin", "email": "claire@vendor.example"}
TOM = {"id": "u-tom", "name": "Tom Becker", "email": "tom@vendor.example"}
FIVE = [  # (example, id, name, amount, close date): Claire's five alerting deals
    ("umbrella-new", "d-1004", "Umbrella pilot", None, "2027-01-31"),
    ("initech-single-thread", "d-1003", "Initech pilot", 12000, "2026-11-30"),
    ("globex-rotting", "d-1002", "Globex expansion", 23500, "2026-11-20"),
    ("globex-rotting", "d-2001", "Globex <Paris> & co", 12000, "2026-11-27"),
    ("acme-renewal", "d-1001", "Acme renewal", 84000, "2026-12-18"),
]
ORDER = [
    "Acme renewal",
    "Globex expansion",
    "Globex <Paris> & co",
    "Initech pilot",
    "Umbrella pilot",
]
"""Largest amount first; equal amounts, the earlier close date first; no amount last."""


def _bundle(example: str, deal_id: str, name: str, amount: Any, close: str, owner: dict) -> Any:
    doc = json.loads(next(p for p in EXAMPLES if p.stem == example).read_text())
    doc["deal"].update(
        id=deal_id,
        name=name,
        amount=amount,
        close_date=close,
        owner=owner["id"],
        url=f"https://crm.example/deals/{deal_id}",
    )
    doc["users"] = [owner]
    return load_bundle(doc)


def _seed(rt: Runtime, tenant_id: str, clock: Clock) -> list[Any]:
    bundles = [_bundle(*spec, owner=CLAIRE) for spec in FIVE]
    bundles.append(_bundle("umbrella-new", "d-3001", "Tom's deal", 5000, "2027-02-01", TOM))
    with rt.store.tenant(tenant_id) as s:
        save_bundles(s, tenant_id, bundles, clock())
    return bundles


def _morning(rt: Runtime, redis: Redis) -> None:
    """What the cron does every minute, twice over: the first tick starts the sweep (the digest
    waits for it), the second, once the sweep is done, plans the digest."""
    schedule.tick()
    run_jobs(redis)
    schedule.tick()
    run_jobs(redis)


def _mails(rt: Runtime) -> dict[str, EmailMessage]:
    found = {}
    for path in Path(rt.notify.outbox_dir).rglob("*.eml"):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        found[message["To"]] = message
    return found


def _parts(message: EmailMessage) -> tuple[str, str]:
    return (message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content())


def _in_order(text: str, needles: list[str]) -> bool:
    positions = [text.find(n) for n in needles]
    return -1 not in positions and positions == sorted(positions)


def test_a_rep_gets_one_digest_of_five_deals_in_order_in_english(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock
) -> None:
    _seed(rt, tenant_id, clock)
    _morning(rt, redis)
    mails = _mails(rt)
    claire = mails["Claire Martin <claire@vendor.example>"]
    assert claire["Subject"] == "Deal Radar: 5 deals need attention today"
    assert claire["Content-Language"] == "en"
    assert claire.get_content_type() == "multipart/alternative"
    text, html = _parts(claire)
    assert text.startswith("Hello Claire Martin,")
    assert _in_order(text, [f". {name}" for name in ORDER]), text
    assert _in_order(
        html,
        [
            f">{name.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')}<"
            for name in ORDER
        ],
    ), html
    assert "<Paris>" not in html, "deal names are escaped in HTML"
    # Each deal with its alerts in plain words, its amount and close date, and its link.
    globex = text[text.index(". Globex expansion") : text.index(". Globex <Paris>")]
    for line in (
        "Amount: EUR 23,500 | Close date: 2026-11-20",
        "- No activity for 23 days (threshold 10)",
        "- Close date passed 5 days ago (2026-11-20)",
        "Open in the CRM: https://crm.example/deals/d-1002",
    ):
        assert line in globex, (line, globex)
    assert "Amount: not set" in text[text.index(". Umbrella pilot") :]
    assert "- Amount is missing" in text
    assert '<a href="https://crm.example/deals/d-1001">Acme renewal</a>' in html
    assert "<li>No activity for 23 days (threshold 10)</li>" in html
    assert "Tom&#39;s deal" not in html and "Tom's deal" not in text, "only Claire's deals"
    tom_text, _ = _parts(mails["Tom Becker <tom@vendor.example>"])
    assert "1 deal needs attention" in mails["Tom Becker <tom@vendor.example>"]["Subject"]
    assert "Tom's deal" in tom_text and "Acme" not in tom_text


def test_the_digest_speaks_the_tenants_locale(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock
) -> None:
    tenants.save_settings(rt.store, tenant_id, {"locale": "fr"}, "admin", clock())
    _seed(rt, tenant_id, clock)
    _morning(rt, redis)
    claire = _mails(rt)["Claire Martin <claire@vendor.example>"]
    assert claire["Subject"] == "Deal Radar : 5 affaires à traiter aujourd'hui"
    assert claire["Content-Language"] == "fr"
    text, html = _parts(claire)
    assert text.startswith("Bonjour Claire Martin,")
    assert _in_order(text, [f". {name}" for name in ORDER]), text
    globex = text[text.index(". Globex expansion") : text.index(". Globex <Paris>")]
    for line in (
        "Montant : 23\u202f500 EUR".replace(" : ", ": "),
        "Date de clôture: 20/11/2026",
        "- Aucune activité depuis 23 jours (seuil 10)",
        "- Date de clôture dépassée depuis 5 jours (20/11/2026)",
        "Ouvrir dans le CRM: https://crm.example/deals/d-1002",
    ):
        assert line in globex, (line, globex)
    assert "- Montant manquant" in text
    assert '<html lang="fr">' in html
    assert "<li>Aucune réunion planifiée</li>" in html


def test_once_per_rep_and_local_day_and_only_after_the_sweep(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock
) -> None:
    _seed(rt, tenant_id, clock)
    clock.now = clock.now.replace(hour=6, minute=30)  # 07:30 in Paris: before the digest hour
    schedule.tick()
    run_jobs(redis)
    assert _mails(rt) == {}
    with rt.store.tenant(tenant_id) as s:
        assert s.get(SweepRun, (tenant_id, clock.now.date())).status == "done"
    clock.now = clock.now.replace(hour=7, minute=0)  # 08:00 in Paris
    assert schedule.tick()["digests"] == 1
    run_jobs(redis)
    first = {path.name for path in Path(rt.notify.outbox_dir).rglob("*.eml")}
    assert len(first) == 2
    for minutes in (1, 30, 600):  # later ticks the same day
        clock.now += timedelta(minutes=minutes)
        assert schedule.tick()["digests"] == 0
        run_jobs(redis)
    assert {path.name for path in Path(rt.notify.outbox_dir).rglob("*.eml")} == first
    clock.now = clock.now.replace(hour=8) + timedelta(days=1)  # the next morning
    schedule.tick()
    run_jobs(redis)
    schedule.tick()
    run_jobs(redis)
    assert len(list(Path(rt.notify.outbox_dir).rglob("*.eml"))) == 4


def test_the_digest_waits_while_the_sweep_runs(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock
) -> None:
    _seed(rt, tenant_id, clock)
    with rt.store.tenant(tenant_id) as s:
        s.add(
            SweepRun(
                tenant_id=tenant_id, day=clock.now.date(), status="running", started_at=clock.now
            )
        )
    assert schedule.tick()["digests"] == 0
    with rt.store.tenant(tenant_id) as s:
        s.get(SweepRun, (tenant_id, clock.now.date())).status = "done"
    assert schedule.tick()["digests"] == 1


def test_the_digest_waits_for_a_sweep_held_back_by_the_api_allowance_for_four_hours_at_most(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock
) -> None:
    _seed(rt, tenant_id, clock)
    with rt.store.tenant(tenant_id) as s:
        s.add(SweepRun(tenant_id=tenant_id, day=clock.now.date(), status="paused",
                       started_at=clock.now))  # fmt: skip
    assert schedule.tick()["digests"] == 0, "this morning's alerts are not all there yet"
    clock.now += timedelta(hours=digest.MAX_WAIT_HOURS)
    assert schedule.tick()["digests"] == 1, "then with what the latest evaluations say"


@pytest.mark.parametrize("hour", [20, 23])
def test_an_evening_digest_waits_for_a_held_back_sweep_past_midnight_then_goes_once(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock, hour: int
) -> None:
    """With `digest.hour` 20 or later the wait ends after midnight, when the clock already says
    the next day: the day's digest was never planned, nor sent."""
    tenants.save_settings(rt.store, tenant_id, {"digest": {"hour": hour}}, "admin", clock())
    bundles = _seed(rt, tenant_id, clock)
    settings = tenants.current_settings(rt.store, tenant_id)
    with rt.store.tenant(tenant_id) as s:  # the latest evaluations, from before the sweep
        pipeline.record(s, tenant_id, bundles, settings, clock())
    with rt.store.tenant(tenant_id) as s:  # the 25th's sweep, held back all day
        s.add(SweepRun(tenant_id=tenant_id, day=date(2026, 11, 25), status="paused",
                       started_at=clock.now))  # fmt: skip
    start = datetime(2026, 11, 25, hour, 0, tzinfo=ZoneInfo("Europe/Paris")).astimezone(UTC)
    planned = []
    clock.now = start
    while clock.now < start + timedelta(hours=digest.MAX_WAIT_HOURS + 3):
        if schedule.tick()["digests"]:
            planned.append(clock.now - start)
        clock.now += timedelta(minutes=10)
    assert planned == [timedelta(hours=digest.MAX_WAIT_HOURS)], "once, when the wait is over"
    with rt.store.tenant(tenant_id) as s:
        keys = s.scalars(select(OutboxEffect.key).where(OutboxEffect.kind == "digest")).all()
    assert keys == ["digest:2026-11-25"]
    run_jobs(redis)
    assert "Claire Martin <claire@vendor.example>" in _mails(rt)


def test_managers_get_the_teams_digest_and_reps_may_opt_out(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock
) -> None:
    settings = {
        "digest": {
            "managers": [
                {"email": "sam@vendor.example", "name": "Sam Boss"},
                {"email": "lea@vendor.example", "reps": ["u-tom"]},
            ]
        },
        "notifications": {"reps": {"u-tom": {"digest": False}}},
    }
    tenants.save_settings(rt.store, tenant_id, settings, "admin", clock())
    _seed(rt, tenant_id, clock)
    _morning(rt, redis)
    mails = _mails(rt)
    assert set(mails) == {
        "Claire Martin <claire@vendor.example>",
        "Sam Boss <sam@vendor.example>",
        "lea@vendor.example",
    }
    sam = mails["Sam Boss <sam@vendor.example>"]
    assert sam["Subject"] == "Deal Radar: your team's 6 deals with alerts today"
    text, _ = _parts(sam)
    assert _in_order(
        text,
        [
            "== Deals of Claire Martin ==",
            ". Acme renewal",
            ". Umbrella pilot",
            "== Deals of Tom Becker ==",
            ". Tom's deal",
        ],
    ), text
    lea, _ = _parts(mails["lea@vendor.example"])
    assert "Tom's deal" in lea and "Acme" not in lea


def test_a_digest_disabled_sends_nothing(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock
) -> None:
    tenants.save_settings(rt.store, tenant_id, {"digest": {"enabled": False}}, "admin", clock())
    _seed(rt, tenant_id, clock)
    _morning(rt, redis)
    assert _mails(rt) == {}
    with rt.store.tenant(tenant_id) as s:
        assert s.scalars(select(OutboxEffect).where(OutboxEffect.kind == "digest")).all() == []


@pytest.mark.parametrize("hour", [9, 23])
def test_the_digest_hour_is_a_setting(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock, hour: int
) -> None:
    tenants.save_settings(rt.store, tenant_id, {"digest": {"hour": hour}}, "admin", clock())
    _seed(rt, tenant_id, clock)
    _morning(rt, redis)  # 09:00 in Paris
    assert bool(_mails(rt)) is (hour <= 9)


def test_a_deactivated_reps_deals_go_to_the_fallback_owners_digest(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock
) -> None:
    _seed(rt, tenant_id, clock)
    with rt.store.tenant(tenant_id) as s:  # Tom left; his deal is still his in the CRM
        s.get(UserRow, (tenant_id, TOM["id"])).active = False
    settings = {"tasks": {"fallback_owner": CLAIRE["id"]}}
    tenants.save_settings(rt.store, tenant_id, settings, "admin", clock())
    _morning(rt, redis)

    mails = _mails(rt)
    assert set(mails) == {"Claire Martin <claire@vendor.example>"}, "no mail to Tom"
    claire = mails["Claire Martin <claire@vendor.example>"]
    assert claire["Subject"] == "Deal Radar: 6 deals need attention today"
    text, _ = _parts(claire)
    assert _in_order(text, [". Acme renewal", "== Deals of Tom Becker ==", ". Tom's deal"]), text


def test_without_a_fallback_a_deactivated_rep_gets_no_digest(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock
) -> None:
    _seed(rt, tenant_id, clock)
    with rt.store.tenant(tenant_id) as s:
        s.get(UserRow, (tenant_id, TOM["id"])).active = False
    _morning(rt, redis)

    mails = _mails(rt)
    assert set(mails) == {"Claire Martin <claire@vendor.example>"}
    assert "Tom's deal" not in _parts(mails["Claire Martin <claire@vendor.example>"])[0]


def test_digests_of_days_the_workers_missed_go_as_one_mail_not_one_a_day(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock
) -> None:
    """The workers were down over the weekend while the cron kept planning each morning's
    digest: on their return every rep got Saturday's, Sunday's and Monday's at once, three
    mails listing the same deals (all three read today's evaluations)."""
    bundles = _seed(rt, tenant_id, clock)
    settings = tenants.current_settings(rt.store, tenant_id)
    with rt.store.tenant(tenant_id) as s:
        pipeline.record(s, tenant_id, bundles, settings, clock())
    days = [date(2026, 11, 28), date(2026, 11, 29), date(2026, 11, 30)]
    for day in days:  # each morning's sweep done, each morning's digest planned, none run
        with rt.store.tenant(tenant_id) as s:
            s.add(SweepRun(tenant_id=tenant_id, day=day, status="done", started_at=clock.now))
        clock.now = datetime.combine(day, datetime.min.time(), UTC).replace(hour=7, minute=5)
        assert schedule.tick()["digests"] == 1
        redis.flushdb()  # nobody takes the job; Redis lost it, or the workers are away
    digest.run(tenant_id)
    run_jobs(redis)
    names = sorted(path.name for path in Path(rt.notify.outbox_dir).rglob("*.eml"))
    assert len(names) == 2, names  # Claire's and Tom's, once each
    assert all("2026-11-30" in name for name in names), names
    with rt.store.tenant(tenant_id) as s:
        rows = s.scalars(select(OutboxEffect).where(OutboxEffect.kind == "digest")).all()
    assert {r.status for r in rows} == {"done"}, "no day's digest is left pending"
