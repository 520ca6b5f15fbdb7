"""Notifications to reps, by email and Slack: at most once per event key and channel.

`on_event` is an actions handler (jobs.actions.HANDLERS): for an event the tenant's settings
notify (`notifications.events`), it renders the message for the deal's owner in the tenant's
locale (for `tasks.fallback_owner` instead when the CRM deactivated the owner; for nobody
when none is set) and puts one outbox effect per channel the rep gets (`mail`, `slack`), keyed
by the event's key, the rep and the channel, so a dispatch run twice proposes nothing new. It
does no network I/O; `send(tenant)` does, for those effects and for the digests jobs.digest
proposes.

Error policy of `send`: each effect is claimed (`sending`) before its message leaves, so a
worker killed mid-send leaves it unsent rather than risk a duplicate (at most once). A
transient failure (SMTP or Slack unreachable, 4xx from SMTP, 429/5xx from Slack) puts it back
with a backoff (30 s doubling, at most an hour apart) for up to RETRY_WINDOW; a permanent one
(recipients refused, the Slack webhook revoked or refused by the SSRF policy, no stored webhook
of that name, no answer once the message was sent: it may have been delivered) marks it
`failed` with the reason, which `dealradar tenants status` shows among the outbox's failures.
Any other error (a bug, data no transport expected) fails that message too, with the error as
its reason and its traceback in the log, and the next message goes. Retries are driven by
`due_at`: a scheduled job at the next due time, and the sweeper's pass as the safety net. A
run takes no new message after TIME_BUDGET and enqueues the next run, so RQ's job timeout
never stops one mid-message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from typing import Any, NamedTuple

from redis.exceptions import RedisError
from rq.timeouts import BaseTimeoutException
from sqlalchemy.orm import Session

from connector import queues
from connector.notify import render
from connector.notify.email import Mail, Mailer, MailError, address, mailer_for
from connector.notify.slack import SlackError, post
from connector.store import tenants, work
from connector.store.credentials import load_tokens
from connector.store.models import AlertEpisode, DealRow, UserRow
from connector.store.secrets import SecretError
from connector.store.snapshots import inactive_users
from connector.store.times import from_db, to_db
from engine.actions import assignees
from engine.notify_settings import rep_choice
from jobs import policy
from jobs.runtime import Runtime, current

log = logging.getLogger(__name__)

MAIL = "mail"
SLACK = "slack"
KINDS = (MAIL, SLACK)
BATCH = 200
"""Messages sent by one job; more continue in the next."""
TIME_BUDGET = timedelta(seconds=20)
"""A run takes no new message after this long; the next run, enqueued at once, goes on. RQ
kills a job at 60 s, and a message it was sending then would stay claimed for good: one
message takes at most 20 s on Slack (connect and read timeouts) and an SMTP step 30 s."""
RETRY_BASE = 30.0
RETRY_CAP = 3600.0
RETRY_WINDOW = timedelta(hours=24)
"""A message not sent within this long after it was proposed is given up (`failed`)."""
UNEXPECTED_CHARS = 200
"""How much of an unexpected error's text the outbox keeps as the message's reason."""
SLACK_CREDENTIAL = "slack:{name}"
"""The Credential row of a stored Slack webhook URL (sealed, like OAuth tokens)."""


def on_event(tenant_id: str, event: dict[str, Any]) -> dict[str, Any]:
    rt = current()
    settings = tenants.current_settings(rt.store, tenant_id)
    document = settings.document
    chosen = document["notifications"]
    anyone = chosen["channels"] or any(r.get("channels") for r in chosen["reps"].values())
    if event["type"] not in chosen["events"] or not anyone:
        return {"notified": 0}  # the default: no instant notifications, no query per event
    if event.get("backlog"):
        return {"notified": 0, "why": "there before the install: the digest lists it"}
    with rt.store.tenant(tenant_id) as s:
        deal = s.get(DealRow, (tenant_id, event["deal_id"]))
        if deal is None or not deal.owner:
            return {"notified": 0, "why": "no deal owner known"}
        if event["type"] == "alert.started" and _ended(s, event):
            return {"notified": 0, "why": "the alert ended before its message was made"}
        if event["type"] == "alert.ended" and deal.status != "open":
            # Won or lost, every alert ends at once: the rep closed it and needs no message
            # per alert saying each was "resolved".
            return {"notified": 0, "why": f"the deal is {deal.status}: its alerts ended with it"}
        # A rep who left reads no mail: whoever takes their deals' tasks hears instead.
        inactive = inactive_users(s, deal.owner, settings.fallback_owner)
        rep = assignees(deal.owner, settings, inactive)[0]
        if rep is None:
            return {"notified": 0, "why": "the deal's owner was deactivated in the CRM "
                    "and no active tasks.fallback_owner is set"}  # fmt: skip
        user = s.get(UserRow, (tenant_id, rep))
        choice = rep_choice(document, rep)
        data = {"id": deal.crm_id, **(deal.data or {})}
        rendered = render.event(event, data, settings.locale)
        effects: list[tuple[str, str, dict[str, Any]]] = []
        base = f"{event['key']}:{rep}"
        to = choice.email or (user.email if user else "")
        if MAIL in _channels(choice.channels) and to:
            mail = {
                "to": [address(user.name if user else "", to)],
                "subject": rendered.subject,
                "text": rendered.text,
                "html": rendered.html,
                "locale": settings.locale,
            }
            effects.append((f"{MAIL}:{base}", MAIL, mail))
        if SLACK in _channels(choice.channels) and choice.slack:
            message = render.slack_message(rendered, render.link(data.get("url")), settings.locale)
            slack = {"webhook": choice.slack, "message": message}
            effects.append((f"{SLACK}:{base}", SLACK, slack))
        new = work.propose_many(s, tenant_id, effects, rt.clock())
    if new:
        request_send(rt, tenant_id)
    return {"notified": len(effects)}


def _ended(s: Session, event: dict[str, Any]) -> bool:
    """The episode is over already (the deal changed again, a mute, the deal closed) by the
    time its start is handled: telling the rep of an alert gone would be noise."""
    episode = s.get(AlertEpisode, int(event["episode_id"]))
    return episode is not None and episode.ended_at is not None


def _channels(channels: tuple[str, ...]) -> set[str]:
    return {"mail" if c == "email" else c for c in channels}


SEND = "notify"
"""The queue mark of a send run (the sweeper's too)."""


def request_send(rt: Runtime, tenant_id: str, delay: float = 0.0) -> None:
    """Ask for `send(tenant)` now, or `delay` seconds ahead for a retry (queues.
    enqueue_now_or_later: a channel failing for hours never holds back another rep's message or
    the digest). The sweeper asks again if Redis loses it."""
    try:
        queues.enqueue_now_or_later(
            rt.redis, queues.ACTIONS, "jobs.notify.send", tenant_id, what=SEND, delay=delay
        )
    except RedisError:
        log.warning("tenant %s: messages wait for the sweeper (Redis refused)", tenant_id)


class _Pending(NamedTuple):
    """An outbox message read for sending, detached from its session."""

    effect_id: int
    key: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime | None


def send(tenant_id: str) -> dict[str, int]:
    rt = current()
    queues.runs_started(rt.redis, tenant_id, SEND)
    now = rt.clock()
    tenant = tenants.get_tenant(rt.store, tenant_id)
    if tenant.status == "uninstalled":
        # Messages a digest or a dispatch proposed while the uninstall was under way (it failed
        # those already waiting): none goes to reps of a customer who left.
        with rt.store.tenant(tenant_id) as s:
            reason = f"tenant uninstalled: {tenant.status_reason}"
            failed = tenants.fail_waiting_effects(s, reason, now)
        return {"sent": 0, "retry": 0, "failed": failed}
    with rt.store.tenant(tenant_id) as s:
        rows = [
            _Pending(e.id, e.key, e.kind, e.payload, e.attempts, from_db(e.created_at))
            for e in work.pending_of_kinds(s, KINDS, now, BATCH)
        ]
    counts = {"sent": 0, "retry": 0, "failed": 0}
    # Built at the first mail, not before the loop: a mailer that cannot be built fails the
    # mail with its reason and never holds back a Slack message.
    mailer = cache(lambda: mailer_for(rt.notify, tenant_id))
    taken = 0
    for row in rows:
        if rt.clock() - now > TIME_BUDGET:
            break
        taken += 1
        outcome = _send_one(rt, tenant_id, mailer, row, now)
        if outcome is not None:
            counts[outcome] += 1
    if taken < len(rows) or len(rows) == BATCH:
        request_send(rt, tenant_id)
    elif counts["retry"]:
        _schedule_next(rt, tenant_id)
    if rows:
        log.info("tenant %s: messages %s", tenant_id, counts)
    return counts


def _send_one(
    rt: Runtime, tenant_id: str, mailer: Callable[[], Mailer], row: _Pending, now: datetime
) -> str | None:
    """Claim and send one message: "sent", "retry" or "failed"; None when already claimed."""
    with rt.store.tenant(tenant_id) as s:
        if not work.claim(s, row.effect_id):
            return None
    try:
        where = (
            mailer().send(_mail(row.key, row.payload), now)
            if row.kind == MAIL
            else _slack(rt, tenant_id, row.payload)
        )
    except (MailError, SlackError) as exc:
        outcome = _after_failure(rt, tenant_id, row.effect_id, exc, row.attempts + 1,
                                 row.created_at)  # fmt: skip
        log.warning("tenant %s: %s %s not sent (%s): %s", tenant_id, row.kind, row.effect_id,
                    outcome, exc)  # fmt: skip
        return outcome
    except BaseTimeoutException:
        raise  # the job's time is up: the message stays claimed, as if the worker were killed
    except Exception as exc:
        # Anything else (a bug, CRM text no transport expected) fails this message with its
        # reason: left claimed it would stay 'sending' for good, and the messages after it
        # would wait for a job that fails the same way every time.
        log.exception("tenant %s: %s %s failed unexpectedly", tenant_id, row.kind, row.effect_id)
        with rt.store.tenant(tenant_id) as s:
            work.settle(s, row.effect_id, "failed", rt.clock(), error=_unexpected(exc))
        return "failed"
    with rt.store.tenant(tenant_id) as s:
        work.settle(s, row.effect_id, "done", rt.clock(), result={"sent_to": where})
    return "sent"


def _unexpected(exc: Exception) -> str:
    return f"not sent: unexpected {type(exc).__name__} ({str(exc)[:UNEXPECTED_CHARS]})"


def _mail(key: str, payload: dict[str, Any]) -> Mail:
    return Mail(
        key=key,
        to=tuple(payload["to"]),
        subject=payload["subject"],
        text=payload["text"],
        html=payload.get("html"),
        locale=payload.get("locale", "en"),
    )


def _slack(rt: Runtime, tenant_id: str, payload: dict[str, Any]) -> str:
    name = payload["webhook"]
    if rt.box is None:
        raise SlackError("no DEALRADAR_SECRET_KEYS: stored Slack webhooks cannot be opened",
                         transient=False)  # fmt: skip
    try:
        stored = load_tokens(rt.store, rt.box, tenant_id, name=SLACK_CREDENTIAL.format(name=name))
    except SecretError as exc:
        raise SlackError(str(exc), transient=False) from None
    if stored is None:
        raise SlackError(
            f"no Slack webhook named {name!r} is stored; store it with "
            f"PUT /api/v1/slack-webhooks/{name}",
            transient=False,
        )
    post(rt.notify.outbound, stored.data["url"], payload["message"])
    return f"slack:{name}"


def _after_failure(
    rt: Runtime,
    tenant_id: str,
    effect_id: int,
    exc: MailError | SlackError,
    attempt: int,
    created_at: datetime | None,
) -> str:
    now = rt.clock()
    retry_after = getattr(exc, "retry_after", None)
    due = now + timedelta(
        seconds=policy.backoff(attempt, retry_after, base=RETRY_BASE, cap=RETRY_CAP)
    )
    give_up = not exc.transient or due - (created_at or now) > RETRY_WINDOW
    with rt.store.tenant(tenant_id) as s:
        if give_up:
            work.settle(s, effect_id, "failed", now, error=str(exc))
            return "failed"
        work.settle(s, effect_id, "pending", now, due_at=to_db(due), error=str(exc))
    return "retry"


def _schedule_next(rt: Runtime, tenant_id: str) -> None:
    """A job at the earliest retry's due time (the sweeper's pass covers a lost one)."""
    with rt.store.tenant(tenant_id) as s:
        due = from_db(work.next_due(s, KINDS))
    if due is not None:
        request_send(rt, tenant_id, delay=max(1.0, (due - rt.clock()).total_seconds()))
