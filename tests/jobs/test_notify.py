"""Rep notifications, end to end: evaluations open episodes, the dispatcher hands their events
to jobs.notify, and each rep hears of each event once per channel chosen in the settings: an
.eml in the outbox (no SMTP), a real SMTP server on loopback (SMTP_URL), a Slack webhook on
loopback."""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import select, update

from connector import queues
from connector.notify import slack as slack_module
from connector.notify.config import NotifyConfig
from connector.notify.ssrf import OutboundPolicy
from connector.store import tenants
from connector.store.credentials import save_tokens
from connector.store.models import OutboxEffect, Tenant, UserRow
from connector.store.snapshots import save_bundles
from connector.store.times import from_db
from engine.model import load_bundle
from jobs import actions, notify, pipeline, sweeper
from jobs.runtime import Runtime
from tests.jobs.conftest import EXAMPLES, Clock, run_jobs
from tests.receiver import Receiver
from tests.smtp_server import Inbox, smtp_server

LOOPBACK = OutboundPolicy(allow_http=True, allow_loopback=True)
CLAIRE_STARTS = 7  # d-1001: 2 alerts, d-1003: 5 (d-1005 is won)
TOM_STARTS = 11  # d-1002: 7, d-1004: 4


@pytest.fixture
def slack() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def _evaluate(rt: Runtime, tenant_id: str, clock: Clock) -> None:
    bundles = [load_bundle(json.loads(p.read_text())) for p in EXAMPLES]
    for b in bundles:
        b.deal.url = f"https://crm.example/deals/{b.deal.id}" if hasattr(b.deal, "url") else None
    settings = tenants.current_settings(rt.store, tenant_id)
    with rt.store.tenant(tenant_id) as s:
        save_bundles(s, tenant_id, bundles, clock())
        pipeline.record(s, tenant_id, bundles, settings, clock())


TOM_ON_SLACK = {"channels": ["email"], "reps": {"u-tom": {"channels": ["slack"], "slack": "team"}}}
"""Claire by email, Tom on the Slack webhook named `team`."""


def _slack_team(rt: Runtime, tenant_id: str, clock: Clock, url: str, notifications: dict) -> None:
    """A Slack webhook stored as `team` (at `url`), and these notification settings."""
    save_tokens(rt.store, rt.box, tenant_id, {"url": url}, None, clock(), name="slack:team")
    tenants.save_settings(rt.store, tenant_id, {"notifications": notifications}, "admin", clock())


def _eml(rt: Runtime) -> list:
    return [
        message_from_bytes(p.read_bytes(), policy=policy.default)
        for p in sorted(Path(rt.notify.outbox_dir).rglob("*.eml"))
    ]


def _redispatch(rt: Runtime, tenant_id: str) -> None:
    """The dispatcher running again over the same events (a retried job, a sweeper pass)."""
    with rt.store.tenant(tenant_id) as s:
        s.execute(
            update(OutboxEffect).where(OutboxEffect.kind == pipeline.EVENT).values(status="pending")
        )
    actions.dispatch(tenant_id)


def test_by_default_reps_get_no_instant_notifications(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock
) -> None:
    _evaluate(rt, tenant_id, clock)
    actions.dispatch(tenant_id)
    run_jobs(redis)
    assert _eml(rt) == []


def test_email_without_smtp_lands_in_the_outbox_once_per_event(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock
) -> None:
    tenants.save_settings(
        rt.store, tenant_id, {"notifications": {"channels": ["email"]}}, "admin", clock()
    )
    _evaluate(rt, tenant_id, clock)
    actions.dispatch(tenant_id)
    run_jobs(redis)
    mails = _eml(rt)
    assert len(mails) == CLAIRE_STARTS + TOM_STARTS
    to = sorted({m["To"] for m in mails})
    assert to == ["Claire Martin <claire@vendor.example>", "Tom Becker <tom@vendor.example>"]
    subjects = {m["Subject"] for m in mails}
    assert (
        "Deal Radar: New alert on Globex expansion: No activity for 23 days (threshold 10)"
        in subjects
    )
    _redispatch(rt, tenant_id)
    run_jobs(redis)
    assert len(_eml(rt)) == CLAIRE_STARTS + TOM_STARTS, "no second message for an event"


def test_a_deal_won_ends_its_alerts_without_a_resolved_message_for_each(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock
) -> None:
    """With alert.ended chosen, a rep hears of an alert resolved by work on the deal; winning
    it ends all seven of Globex's at once, and seven "resolved" mails would only be noise."""
    events = ["alert.started", "alert.ended"]
    tenants.save_settings(rt.store, tenant_id,
                          {"notifications": {"channels": ["email"], "events": events}},
                          "admin", clock())  # fmt: skip
    bundles = [load_bundle(json.loads(p.read_text())) for p in EXAMPLES]

    def evaluate() -> None:
        settings = tenants.current_settings(rt.store, tenant_id)
        with rt.store.tenant(tenant_id) as s:
            save_bundles(s, tenant_id, bundles, clock())
            pipeline.record(s, tenant_id, bundles, settings, clock())
        actions.dispatch(tenant_id)
        run_jobs(redis)

    evaluate()
    assert len(_eml(rt)) == CLAIRE_STARTS + TOM_STARTS
    globex = next(b for b in bundles if b.deal.name == "Globex expansion")
    globex.deal.status = "won"
    clock.now += timedelta(minutes=5)
    evaluate()
    assert len(_eml(rt)) == CLAIRE_STARTS + TOM_STARTS, "no mail for alerts a win ended"


def test_an_alert_over_before_its_start_is_handled_sends_nothing(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock
) -> None:
    """Globex is won before the dispatcher handles its alerts' starts (a worker busy, Redis
    down a while): the rep hears nothing of seven alerts already gone."""
    tenants.save_settings(
        rt.store, tenant_id, {"notifications": {"channels": ["email"]}}, "admin", clock()
    )
    bundles = [load_bundle(json.loads(p.read_text())) for p in EXAMPLES]
    settings = tenants.current_settings(rt.store, tenant_id)
    for won in (False, True):
        if won:
            next(b for b in bundles if b.deal.name == "Globex expansion").deal.status = "won"
            clock.now += timedelta(minutes=5)
        with rt.store.tenant(tenant_id) as s:
            save_bundles(s, tenant_id, bundles, clock())
            pipeline.record(s, tenant_id, bundles, settings, clock())
    actions.dispatch(tenant_id)
    run_jobs(redis)
    mails = _eml(rt)
    assert len(mails) == CLAIRE_STARTS + TOM_STARTS - 7
    assert not any("Globex" in m["Subject"] for m in mails)


def test_alerts_a_deal_had_before_the_install_are_left_to_the_digest(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock
) -> None:
    with rt.store.tenant(tenant_id) as s:  # installed yesterday, after the deals were made
        s.get(Tenant, tenant_id).created_at = clock() - timedelta(days=1)
    tenants.save_settings(
        rt.store, tenant_id, {"notifications": {"channels": ["email"]}}, "admin", clock()
    )
    _evaluate(rt, tenant_id, clock)
    actions.dispatch(tenant_id)
    run_jobs(redis)
    assert _eml(rt) == [], "no message per alert of the install's backlog"


def test_with_smtp_url_the_smtp_server_receives_each_message_once(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock
) -> None:
    settings = {
        "notifications": {
            "events": ["alert.started"],
            "channels": [],
            "reps": {"u-claire": {"channels": ["email"]}},
        }
    }
    tenants.save_settings(rt.store, tenant_id, settings, "admin", clock())
    _evaluate(rt, tenant_id, clock)
    with smtp_server() as (url, inbox):
        rt.notify = dataclasses.replace(rt.notify, smtp_url=url)
        actions.dispatch(tenant_id)
        run_jobs(redis)
        _redispatch(rt, tenant_id)
        run_jobs(redis)
    assert len(inbox.messages) == CLAIRE_STARTS, "Claire only, once per event"
    assert {rcpts[0] for _, rcpts in inbox.envelopes} == {"claire@vendor.example"}
    assert len({m["Message-ID"] for m in inbox.messages}) == CLAIRE_STARTS
    assert _eml(rt) == [], "with SMTP_URL set nothing goes to the outbox folder"


@contextmanager
def _claires_mails_during_an_smtp_outage(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock,
    on_data: Callable[[], None] | None = None,
) -> Iterator[Inbox]:  # fmt: skip
    """Claire's alert mails, refused by an SMTP server that is shutting down (421); `on_data`
    happens while the server is given the first of them."""
    settings = {"notifications": {"reps": {"u-claire": {"channels": ["email"]}}}}
    tenants.save_settings(rt.store, tenant_id, settings, "admin", clock())
    _evaluate(rt, tenant_id, clock)
    with smtp_server() as (url, inbox):
        inbox.refuse_with = "421 4.3.2 Service shutting down"
        inbox.on_data = on_data
        rt.notify = dataclasses.replace(rt.notify, smtp_url=url)
        actions.dispatch(tenant_id)
        run_jobs(redis)
        yield inbox


def test_an_smtp_outage_is_retried_later_and_sends_once(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock
) -> None:
    with _claires_mails_during_an_smtp_outage(rt, redis, tenant_id, clock) as inbox:
        assert inbox.messages == []
        with rt.store.tenant(tenant_id) as s:
            waiting = s.scalars(select(OutboxEffect).where(OutboxEffect.kind == "mail")).all()
        assert {e.status for e in waiting} == {"pending"} and len(waiting) == CLAIRE_STARTS
        assert all(from_db(e.due_at) > clock.now for e in waiting)
        assert all("421" in e.last_error for e in waiting)
        registry = queues.queue(redis, queues.ACTIONS).scheduled_job_registry
        assert registry.count == 1, registry.get_job_ids()
        inbox.refuse_with = None
        clock.now += timedelta(minutes=5)
        redis.flushdb()  # Redis lost the scheduled retry: the sweeper finds the due messages
        sweeper.run()
        run_jobs(redis)
    assert len(inbox.messages) == CLAIRE_STARTS


def test_messages_proposed_while_the_customer_uninstalls_never_go_out(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock
) -> None:
    """A dispatch that read its events before the uninstall proposes Claire's mails after it
    (the uninstall failed what was waiting then): the send must not deliver them."""
    settings = {"notifications": {"reps": {"u-claire": {"channels": ["email"]}}}}
    tenants.save_settings(rt.store, tenant_id, settings, "admin", clock())
    _evaluate(rt, tenant_id, clock)
    tenants.uninstall_tenant(rt.store, tenant_id, "the customer left", clock())
    with rt.store.tenant(tenant_id) as s:  # as the racing dispatch would have: pending again
        s.execute(update(OutboxEffect).values(status="pending"))
    actions.dispatch(tenant_id)
    notify.send(tenant_id)
    run_jobs(redis)

    assert _eml(rt) == []
    with rt.store.tenant(tenant_id) as s:
        mails = s.scalars(select(OutboxEffect).where(OutboxEffect.kind == "mail")).all()
    assert mails and {(e.status, e.last_error) for e in mails} == {
        ("failed", "tenant uninstalled: the customer left")
    }


def _claires_mails_after_the_outage_and_a_reinstall(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock, inbox: Inbox
) -> list[OutboxEffect]:
    """The SMTP server is back when the retries scheduled before the uninstall come due, and
    then the customer reinstalls: none of Claire's mails may go out. Each, as it ended."""
    inbox.refuse_with = None
    clock.now += timedelta(hours=2)
    notify.send(tenant_id)  # the retries scheduled before the uninstall
    tenants.set_status(rt.store, tenant_id, "active", None, clock())  # reinstalled
    notify.send(tenant_id)
    run_jobs(redis)
    assert inbox.messages == []
    with rt.store.tenant(tenant_id) as s:
        mails = list(s.scalars(select(OutboxEffect).where(OutboxEffect.kind == "mail")))
    assert len(mails) == CLAIRE_STARTS
    return mails


def test_messages_still_waiting_when_the_customer_uninstalls_never_go_out(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock
) -> None:
    """An SMTP outage holds Claire's mails back; meanwhile the customer uninstalls. Neither the
    retry already scheduled nor a reinstall weeks later may send those stale alerts."""
    with _claires_mails_during_an_smtp_outage(rt, redis, tenant_id, clock) as inbox:
        tenants.uninstall_tenant(rt.store, tenant_id, "the customer left", clock())
        mails = _claires_mails_after_the_outage_and_a_reinstall(rt, redis, tenant_id, clock, inbox)
    assert {(e.status, e.last_error) for e in mails} == {
        ("failed", "tenant uninstalled: the customer left")
    }


def test_a_message_being_sent_when_the_customer_uninstalls_never_goes_out_later(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock
) -> None:
    """The customer uninstalls while the SMTP server, in an outage, is being given one of
    Claire's mails: the others fail with the uninstall, and the one being sent, refused, must
    not be put back for a retry that sends it after the customer left (or stale after a
    reinstall)."""

    def uninstall() -> None:
        tenants.uninstall_tenant(rt.store, tenant_id, "the customer left", clock())

    with _claires_mails_during_an_smtp_outage(rt, redis, tenant_id, clock, uninstall) as inbox:
        mails = _claires_mails_after_the_outage_and_a_reinstall(rt, redis, tenant_id, clock, inbox)
    assert {e.status for e in mails} == {"failed"}


def test_a_message_claimed_by_a_killed_worker_is_not_sent_again(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock
) -> None:
    settings = {"notifications": {"reps": {"u-claire": {"channels": ["email"]}}}}
    tenants.save_settings(rt.store, tenant_id, settings, "admin", clock())
    _evaluate(rt, tenant_id, clock)
    with rt.store.tenant(tenant_id):
        pass
    original = notify.send
    notify.send = lambda tenant: {}  # the send job is lost: only the proposals exist
    try:
        actions.dispatch(tenant_id)
        run_jobs(redis)
    finally:
        notify.send = original
    with rt.store.tenant(tenant_id) as s:
        first = s.scalars(select(OutboxEffect.id).where(OutboxEffect.kind == "mail")).first()
        s.execute(update(OutboxEffect).where(OutboxEffect.id == first).values(status="sending"))
    notify.send(tenant_id)
    assert len(_eml(rt)) == CLAIRE_STARTS - 1


def test_a_message_that_fails_unexpectedly_is_failed_with_its_reason_and_the_rest_go(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock
) -> None:
    """Tom's address came from the CRM as two lines, which Python's email refuses in a
    header (a ValueError, no MailError): his messages fail with that reason, Claire's go."""
    tenants.save_settings(
        rt.store, tenant_id, {"notifications": {"channels": ["email"]}}, "admin", clock()
    )
    _evaluate(rt, tenant_id, clock)
    with rt.store.tenant(tenant_id) as s:
        s.get(UserRow, (tenant_id, "u-tom")).email = "tom@vendor.example\ntom.b@vendor.example"
    actions.dispatch(tenant_id)
    run_jobs(redis)
    assert [m["To"] for m in _eml(rt)] == ["Claire Martin <claire@vendor.example>"] * (
        CLAIRE_STARTS
    )
    with rt.store.tenant(tenant_id) as s:
        effects = s.scalars(select(OutboxEffect).where(OutboxEffect.kind == "mail")).all()
    toms = [e for e in effects if "tom@" in e.payload["to"][0]]
    assert len(toms) == TOM_STARTS
    assert {e.status for e in toms} == {"failed"}, "none left 'sending' for good"
    assert all("unexpected ValueError (Header values may not" in e.last_error for e in toms)


def test_slack_webhook_delivery_to_a_loopback_receiver(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock, slack: Receiver
) -> None:
    rt.notify = NotifyConfig(outbox_dir=rt.notify.outbox_dir, outbound=LOOPBACK)
    save_tokens(rt.store, rt.box, tenant_id, {"url": slack.url}, None, clock(), name="slack:team")
    settings = {
        "notifications": {
            "channels": ["slack"],
            "slack": "team",
            "events": ["alert.started", "alert.ended"],
        }
    }
    tenants.save_settings(rt.store, tenant_id, settings, "admin", clock())
    _evaluate(rt, tenant_id, clock)
    actions.dispatch(tenant_id)
    run_jobs(redis)
    texts = [json.loads(r.body)["text"] for r in slack.received]
    assert len(texts) == CLAIRE_STARTS + TOM_STARTS
    assert "New alert on Globex expansion: No activity for 23 days (threshold 10)" in [
        t.partition(" <")[0] for t in texts
    ]
    _redispatch(rt, tenant_id)
    run_jobs(redis)
    assert len(slack.received) == CLAIRE_STARTS + TOM_STARTS
    assert _eml(rt) == [], "Slack only"


def test_a_mailer_that_cannot_be_built_fails_the_mail_and_never_holds_back_slack(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock, slack: Receiver
) -> None:
    """An SMTP_URL that slipped past the start's check (a config built in code): the mailer was
    built before the first message, so the job died and Tom's Slack posts never went."""
    bad = "smtp://dr:Kq#93-xZ!@mail.example:587"
    rt.notify = NotifyConfig(outbox_dir=rt.notify.outbox_dir, smtp_url=bad, outbound=LOOPBACK)
    _slack_team(rt, tenant_id, clock, slack.url, TOM_ON_SLACK)
    _evaluate(rt, tenant_id, clock)
    actions.dispatch(tenant_id)
    run_jobs(redis)
    assert len(slack.received) == TOM_STARTS
    with rt.store.tenant(tenant_id) as s:
        mails = s.scalars(select(OutboxEffect).where(OutboxEffect.kind == "mail")).all()
    assert len(mails) == CLAIRE_STARTS and {e.status for e in mails} == {"failed"}
    assert all("percent-encode" in e.last_error for e in mails)
    assert not any("Kq" in e.last_error for e in mails), "no part of the password shown"


def test_a_slack_down_for_hours_never_holds_back_another_reps_email(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock
) -> None:
    """Tom's Slack keeps failing, its retry scheduled far ahead: Claire's email about a new
    alert must still go at once."""
    rt.notify = NotifyConfig(outbox_dir=rt.notify.outbox_dir, outbound=LOOPBACK)
    down = Receiver(status=503).start()
    try:
        _slack_team(rt, tenant_id, clock, down.url, TOM_ON_SLACK)
        _evaluate(rt, tenant_id, clock)
        actions.dispatch(tenant_id)
        run_jobs(redis)
        assert len(_eml(rt)) == CLAIRE_STARTS
        for _ in range(9):  # Slack stays down; each retry runs at its due time: backoff grows
            with rt.store.tenant(tenant_id) as s:
                clock.now = max(from_db(e.due_at) for e in s.scalars(select(OutboxEffect).where(
                    OutboxEffect.kind == "slack", OutboxEffect.status == "pending")))  # fmt: skip
            notify.send(tenant_id)
        bundles = [load_bundle(json.loads(p.read_text())) for p in EXAMPLES]
        bundles[0].deal.amount = None  # d-1001, Claire's: amount_missing starts
        clock.now += timedelta(seconds=1)
        with rt.store.tenant(tenant_id) as s:
            save_bundles(s, tenant_id, bundles, clock())
            pipeline.record(s, tenant_id, bundles, tenants.current_settings(rt.store, tenant_id),
                            clock())  # fmt: skip
        actions.dispatch(tenant_id)
        run_jobs(redis)
        assert len(_eml(rt)) == CLAIRE_STARTS + 1, "emailed at once"
    finally:
        down.stop()


def test_a_slack_answer_too_late_leaves_one_post_not_two(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack takes the post but answers after the read timeout (15 s in production): retried,
    the rep saw the same alert twice in the channel."""
    monkeypatch.setattr(slack_module, "TIMEOUT", (5.0, 0.2))
    late = Receiver(check=lambda headers, body: time.sleep(0.5)).start()
    try:
        rt.notify = NotifyConfig(outbox_dir=rt.notify.outbox_dir, outbound=LOOPBACK)
        claire = {"channels": ["slack"], "slack": "team"}
        _slack_team(rt, tenant_id, clock, late.url, {"reps": {"u-claire": claire}})
        _evaluate(rt, tenant_id, clock)
        actions.dispatch(tenant_id)  # the messages proposed; the send job is run by hand below
        with rt.store.tenant(tenant_id) as s:  # one message is enough, and quicker
            query = select(OutboxEffect).where(OutboxEffect.kind == "slack")
            first, *others = s.scalars(query.order_by(OutboxEffect.id)).all()
            for effect in others:
                effect.status = "done"
            first_id = first.id
        notify.send(tenant_id)
        clock.now += timedelta(hours=1)
        notify.send(tenant_id)
        time.sleep(0.5)
        assert len(late.received) == 1, "posted once"
        with rt.store.tenant(tenant_id) as s:
            effect = s.get(OutboxEffect, first_id)
        assert effect.status == "failed" and "may have been delivered" in effect.last_error
    finally:
        late.stop()


def test_a_slack_webhook_refused_by_the_ssrf_policy_fails_without_sending(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock, slack: Receiver
) -> None:
    _slack_team(rt, tenant_id, clock, slack.url, {"channels": ["slack"], "slack": "team"})
    _evaluate(rt, tenant_id, clock)
    actions.dispatch(tenant_id)
    run_jobs(redis)  # the runtime's policy is production's: no loopback, https only
    assert slack.answered == []
    with rt.store.tenant(tenant_id) as s:
        effects = s.scalars(select(OutboxEffect).where(OutboxEffect.kind == "slack")).all()
    assert {e.status for e in effects} == {"failed"}
    assert "refused" in effects[0].last_error


def _deactivate(rt: Runtime, tenant_id: str, user_id: str) -> None:
    with rt.store.tenant(tenant_id) as s:
        s.get(UserRow, (tenant_id, user_id)).active = False


def test_a_deactivated_reps_notifications_go_to_the_fallback_owner_or_nobody(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock
) -> None:
    tenants.save_settings(
        rt.store, tenant_id, {"notifications": {"channels": ["email"]}}, "admin", clock()
    )
    _evaluate(rt, tenant_id, clock)
    _deactivate(rt, tenant_id, "u-tom")  # Tom left; his deals are still his in the CRM
    actions.dispatch(tenant_id)
    run_jobs(redis)
    assert [m["To"] for m in _eml(rt)] == ["Claire Martin <claire@vendor.example>"] * (
        CLAIRE_STARTS
    ), "no fallback set: nobody hears of Tom's deals, and Tom gets no mail"

    document = {"notifications": {"channels": ["email"]}, "tasks": {"fallback_owner": "u-claire"}}
    tenants.save_settings(rt.store, tenant_id, document, "admin", clock())
    _redispatch(rt, tenant_id)
    run_jobs(redis)
    mails = _eml(rt)
    assert len(mails) == CLAIRE_STARTS + TOM_STARTS
    assert {m["To"] for m in mails} == {"Claire Martin <claire@vendor.example>"}
    assert any("Globex expansion" in m["Subject"] for m in mails), "Tom's deal, to Claire"


def test_a_run_slower_than_the_job_timeout_strands_no_message(
    rt: Runtime, redis: Redis, tenant_id: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each post takes a while (a slow Slack, or SMTP over TLS to a remote relay: a morning
    digest to a hundred reps): a run that went on past RQ's job timeout (60 s; 2 s here) was
    killed mid-message, which stayed 'sending' for good, never sent nor retried."""
    monkeypatch.setitem(queues.enqueue_once.__kwdefaults__, "timeout", 2)
    monkeypatch.setattr(notify, "TIME_BUDGET", timedelta(seconds=1), raising=False)

    def slow(headers: dict, body: bytes) -> None:
        time.sleep(0.2)
        clock.now += timedelta(seconds=0.4)  # the run's clock: its budget ends well in time

    rt.notify = NotifyConfig(outbox_dir=rt.notify.outbox_dir, outbound=LOOPBACK)
    slow_slack = Receiver(check=slow).start()
    try:
        _slack_team(rt, tenant_id, clock, slow_slack.url, {"channels": ["slack"], "slack": "team"})
        _evaluate(rt, tenant_id, clock)
        actions.dispatch(tenant_id)
        run_jobs(redis)
        with rt.store.tenant(tenant_id) as s:
            statuses = s.scalars(select(OutboxEffect.status).where(OutboxEffect.kind == "slack"))
            assert Counter(statuses) == {"done": CLAIRE_STARTS + TOM_STARTS}
        assert len(slow_slack.received) == CLAIRE_STARTS + TOM_STARTS
    finally:
        slow_slack.stop()
