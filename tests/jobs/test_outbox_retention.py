"""The daily purge deletes the finished outbox rows of CRM tasks, notes, mails and digests once
their keys can never be proposed again (jobs.retention), and keeps those whose keys could be:
through the real jobs, a real Redis and SMTP server, the folder CRM, on SQLite and PostgreSQL.
After the purge, nothing is made or sent twice."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from redis import Redis
from sqlalchemy import delete, select, update

from adapters.folder.client import FolderClient
from connector import queues
from connector.store import tenants, work
from connector.store.models import AlertEpisode, DealRow, OutboxEffect
from connector.store.tenants import create_tenant
from engine.model import dump_bundle
from jobs import crm_actions, pipeline, purge, schedule, sweeper
from jobs.runtime import Runtime
from tests.jobs.conftest import INSTALLED, Clock, log_a_call, run_jobs
from tests.smtp_server import Inbox, smtp_server

DEALS = ["d-1001", "d-1002", "d-1003", "d-1004", "d-1005"]


def _daily_run(clock: Clock, days: int) -> None:
    """The purge's daily run (its ORPHANS_HOUR, UTC) `days` after the clock's day."""
    day = (clock.now + timedelta(days=days)).astimezone(UTC)
    clock.now = day.replace(hour=purge.ORPHANS_HOUR, minute=23, second=0, microsecond=0)
    purge.run()


def _refresh(redis: Redis, tenant_id: str, deals: list[str] = DEALS) -> None:
    queues.request_refresh(redis, tenant_id, deals, window=0)
    run_jobs(redis)


def _keys(rt: Runtime, tenant_id: str) -> dict[str, str]:
    with rt.store.tenant(tenant_id) as s:
        return {e.key: e.status for e in s.scalars(select(OutboxEffect))}


def _episode(rt: Runtime, tenant_id: str, deal_id: str, code: str) -> AlertEpisode:
    with rt.store.tenant(tenant_id) as s:
        found = s.scalars(
            select(AlertEpisode).where(AlertEpisode.deal_id == deal_id, AlertEpisode.code == code)
        ).one()
        s.expunge(found)
        return found


def _created_twice(crm: FolderClient, op: str) -> list[str]:
    """The keys the CRM was asked more than once to create a record for."""
    return [key for key, n in Counter(c["key"] for c in crm.calls(op)).items() if n > 1]


def _sent_twice(inbox: Inbox) -> list[str]:
    """Message-IDs (made from the outbox key) that reached the SMTP server more than once."""
    return [mid for mid, n in Counter(m["Message-ID"] for m in inbox.messages).items() if n > 1]


# -- which rows go, row by row -------------------------------------------------------------------


def _kind(key: str) -> str:
    kind, *rest = key.split(":")
    return "mail" if kind == "digest" and len(rest) > 1 else kind


def _rows(rt: Runtime, tenant_id: str, at: datetime) -> dict[str, str]:
    """Episodes and finished outbox rows of every kind, as the jobs leave them; the keys, each
    with whether the daily purge 32 days later must delete or keep it once every event is
    dispatched."""
    with rt.store.tenant(tenant_id) as s:
        s.add(DealRow(tenant_id=tenant_id, crm_id="d-1", pipeline="p", stage="s",
                      status="open", data={}, synced_at=at))  # fmt: skip

        def episode(ended: bool) -> int:
            row = AlertEpisode(
                tenant_id=tenant_id, deal_id="d-1", key="no_activity", code="no_activity",
                started_at=at - timedelta(days=2), ended_at=at if ended else None, facts={},
            )  # fmt: skip
            s.add(row)
            s.flush()
            return row.id

        gone, ended, failed, open_, last = (episode(i != 3) for i in range(5))
        # The deleted deal's episode: gone from the store (connector.store.orphans).
        s.execute(delete(AlertEpisode).where(AlertEpisode.id == gone))
        day = at.date().isoformat()
        grade = f"health.grade_changed:d-1:{day}:fair:good"
        fates = {
            f"crm_task:{gone}": "deleted",
            f"crm_task:{ended}": "deleted",
            f"crm_task_done:{ended}": "deleted",
            f"crm_task_owner:{ended}:0:u-tom": "deleted",
            f"mail:alert.ended:{ended}:u-tom": "deleted",
            f"crm_task:{failed}": "deleted",  # refused by the CRM: `failed`
            f"crm_task_done:{failed}": "kept",  # still to do: pending
            f"mail:alert.started:{failed}:u-tom": "kept",  # a worker died sending it
            f"crm_task:{open_}": "kept",  # the episode's end will complete the task
            f"crm_task_owner:{open_}:0:u-tom": "kept",  # a hand-over may be proposed again
            f"mail:alert.started:{open_}:u-tom": "deleted",
            f"slack:alert.started:{open_}:u-tom": "deleted",
            f"crm_note:{grade}": "deleted",
            f"mail:{grade}:u-tom": "deleted",
            f"digest:{day}": "deleted",
            f"digest:{day}:u-tom": "deleted",
            f"digest:{day}:manager:sam@vendor.example": "deleted",
            f"mail:custom:{day}": "kept",  # a key this release does not know
            # A deal id of a CRM's own making that reads as a day that is none: kept, and the
            # purge goes on (it stopped, for this tenant and every one after it).
            "crm_note:health.grade_changed:d:2026-13-45:x:fair:good": "kept",
            f"crm_task:{last}": "kept",  # done within the keeping period: below
        }
        work.propose_many(s, tenant_id, [(key, _kind(key), {}) for key in fates], at)
        s.execute(update(OutboxEffect).values(status="done", done_at=at))
        s.execute(
            update(OutboxEffect)
            .where(OutboxEffect.key.in_([f"crm_task:{failed}", f"mail:custom:{day}"]))
            .values(status="failed")
        )
        s.execute(
            update(OutboxEffect)
            .where(OutboxEffect.key == f"crm_task_done:{failed}")
            .values(status="pending")
        )
        s.execute(
            update(OutboxEffect)
            .where(OutboxEffect.key == f"mail:alert.started:{failed}:u-tom")
            .values(status="sending")
        )
        s.execute(
            update(OutboxEffect)
            .where(OutboxEffect.key == f"crm_task:{last}")
            .values(due_at=at + timedelta(days=10))
        )
    return fates


def test_each_kind_of_key_goes_once_it_can_never_be_proposed_again(
    rt: Runtime, tenant_id: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(purge, "PURGE_BATCH", 4)  # 20 rows: several batches
    fates = _rows(rt, tenant_id, clock.now)

    _daily_run(clock, days=purge.KEEP_DONE_EFFECTS.days - 2)
    assert set(_keys(rt, tenant_id)) == set(fates), "nothing goes within the keeping period"
    clock.now += timedelta(hours=1)
    purge.run()
    assert set(_keys(rt, tenant_id)) == set(fates), "only the daily run deletes them"

    _daily_run(clock, days=4)
    assert set(_keys(rt, tenant_id)) == {k for k, fate in fates.items() if fate == "kept"}


def test_a_failure_is_kept_for_the_keeping_period_after_it_happened(
    rt: Runtime, tenant_id: str, clock: Clock
) -> None:
    """A mail due long ago (its tenant suspended meanwhile) that failed only days ago stays for
    an admin to see and retry: the keeping period runs from the failure, not from the due day."""
    fates = _rows(rt, tenant_id, clock.now)
    late = next(k for k in fates if k.startswith("mail:alert.ended:"))
    failed_at = clock.now + timedelta(days=20)
    with rt.store.tenant(tenant_id) as s:
        row = s.scalars(select(OutboxEffect).where(OutboxEffect.key == late)).one()
        row.status, row.done_at = "pending", None
        s.flush()
        assert work.claim(s, row.id)
        work.settle(s, row.id, "failed", failed_at, error="550 mailbox unavailable")

    _daily_run(clock, days=purge.KEEP_DONE_EFFECTS.days + 2)
    kept = _keys(rt, tenant_id)
    assert kept.get(late) == "failed", "failed 12 days ago: still shown"
    assert f"crm_task_done:{late.split(':')[2]}" not in kept, "its neighbours went"

    _daily_run(clock, days=20)
    assert late not in _keys(rt, tenant_id)


def test_while_an_event_waits_for_its_dispatch_what_it_would_propose_stays(
    rt: Runtime, tenant_id: str, clock: Clock
) -> None:
    """An event batch still pending (its tenant suspended before the dispatch, which the
    sweeper then leaves alone) proposes its tasks, notes and mails when it is dispatched at
    last: their keys must still be there to refuse those made already. Another tenant's
    waiting events hold back nothing of this one's."""
    other, _ = create_tenant(rt.store, crm="test", account_id="other", now=INSTALLED)
    fates = _rows(rt, tenant_id, clock.now)
    stalled = _rows(rt, other.id, clock.now)
    with rt.store.tenant(other.id) as s:
        work.propose_many(s, other.id, [("events:late", pipeline.EVENT, {"events": []})],
                          clock.now - timedelta(days=3))  # fmt: skip

    _daily_run(clock, days=purge.KEEP_DONE_EFFECTS.days + 2)

    assert set(_keys(rt, tenant_id)) == {k for k, fate in fates.items() if fate == "kept"}
    digests = {k for k in stalled if k.startswith("digest:")}
    assert set(_keys(rt, other.id)) == set(stalled) - digests | {"events:late"}, (
        "only the digests, which no event proposes, go"
    )


# -- what a user sees: nothing made or sent twice -------------------------------------------------


def test_a_task_row_stays_while_its_episode_is_open_so_that_its_end_completes_the_task(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock
) -> None:
    _refresh(redis, tenant_id)
    log_a_call(crm, "d-1002", "2026-11-25T07:40:00Z")
    _refresh(redis, tenant_id, ["d-1002"])
    ended = _episode(rt, tenant_id, "d-1002", "no_activity")
    open_ = _episode(rt, tenant_id, "d-1004", "amount_missing")
    assert ended.ended_at is not None and open_.ended_at is None
    task = crm.tasks()[ended.crm_refs["task"]]
    assert task["status"] == "completed"
    before = _keys(rt, tenant_id)
    assert before[f"crm_task:{ended.id}"] == before[f"crm_task_done:{ended.id}"] == "done"

    _daily_run(clock, days=purge.KEEP_DONE_EFFECTS.days + 2)
    after = _keys(rt, tenant_id)
    assert f"crm_task:{ended.id}" not in after and f"crm_task_done:{ended.id}" not in after
    assert after[f"crm_task:{open_.id}"] == "done", "its end is still to come"

    # The next refresh, and the end of the alert that outlived the keeping period.
    tasks = len(crm.tasks())
    doc = dump_bundle(crm.pull(["d-1004"]).bundles[0])
    doc["deal"]["amount"] = 9000
    crm.put_deal(doc)
    _refresh(redis, tenant_id)
    crm_actions.run(tenant_id)
    assert crm.tasks()[open_.crm_refs["task"]]["status"] == "completed"
    assert _created_twice(crm, "create_task") == []
    new = {t["key"] for t in list(crm.tasks().values())[tasks:]}
    old = {f"crm_task:{e}" for e in (ended.id, open_.id)}
    assert not new & old, "no second task for an episode whose rows were purged"


@pytest.fixture
def smtp(rt: Runtime) -> Iterator[Inbox]:
    with smtp_server() as (url, inbox):
        rt.notify = dataclasses.replace(rt.notify, smtp_url=url)
        yield inbox


def _notes_and_mails(rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient) -> None:
    """Alert mails to every rep; then d-1002's grade moves (a lower cut): a note and a mail."""
    notify = {"events": ["alert.started", "health.grade_changed"], "channels": ["email"]}
    tenants.save_settings(
        rt.store, tenant_id, {"notifications": notify, "notes": {"grade_changed": True}},
        "admin", rt.clock(),
    )  # fmt: skip
    _refresh(redis, tenant_id)
    tenants.save_settings(
        rt.store, tenant_id,
        {"notifications": notify, "notes": {"grade_changed": True}, "health": {"fair_from": 30}},
        "admin", rt.clock(),
    )  # fmt: skip
    _refresh(redis, tenant_id, ["d-1002"])
    assert len(crm.notes()) == 1


def test_after_the_purge_no_mail_or_note_goes_twice(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock, smtp: Inbox
) -> None:
    _notes_and_mails(rt, redis, tenant_id, crm)
    sent = len(smtp.messages)
    assert sent > 10 and _sent_twice(smtp) == []

    _daily_run(clock, days=purge.KEEP_DONE_EFFECTS.days + 2)
    left = _keys(rt, tenant_id)
    assert not [k for k in left if k.startswith(("mail:", "crm_note:"))], left

    sweeper.run()
    _refresh(redis, tenant_id)
    crm_actions.run(tenant_id)
    assert _sent_twice(smtp) == [] and _created_twice(crm, "create_note") == []


def test_an_event_dispatched_late_after_the_purge_sends_nothing_twice(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock, smtp: Inbox
) -> None:
    """The dispatcher died after its handlers had proposed everything, before it completed its
    rows; the tenant was suspended before the sweeper put them back: a month later, reinstated,
    the same events are dispatched again."""
    _notes_and_mails(rt, redis, tenant_id, crm)
    with rt.store.tenant(tenant_id) as s:
        s.execute(
            update(OutboxEffect).where(OutboxEffect.kind == pipeline.EVENT).values(status="pending")
        )
    tenants.set_status(rt.store, tenant_id, "suspended", "token revoked", clock())
    sent = len(smtp.messages)

    _daily_run(clock, days=purge.KEEP_DONE_EFFECTS.days + 2)
    tenants.set_status(rt.store, tenant_id, "active", None, clock())
    sweeper.run()
    run_jobs(redis)

    assert len(smtp.messages) == sent and _sent_twice(smtp) == []
    assert len(crm.calls("create_note")) == 1


def _morning(rt: Runtime, redis: Redis, clock: Clock, day: datetime) -> None:
    """The cron's ticks on a morning past the digest hour (08:00 local): the first starts the
    sweep, the second, once it is done, plans the digest."""
    clock.now = day.replace(hour=8, minute=0, second=0, microsecond=0)
    for _ in range(2):
        schedule.tick()
        run_jobs(redis)


def test_a_digest_is_never_sent_twice_after_the_purge(
    rt: Runtime, redis: Redis, tenant_id: str, crm: FolderClient, clock: Clock, smtp: Inbox
) -> None:
    _refresh(redis, tenant_id)
    first = clock.now
    _morning(rt, redis, clock, first)
    _morning(rt, redis, clock, first + timedelta(days=31))
    digests = {k for k in _keys(rt, tenant_id) if k.startswith("digest:")}
    old, recent = first.date().isoformat(), (first + timedelta(days=31)).date().isoformat()
    assert {f"digest:{old}", f"digest:{recent}"} <= digests

    _daily_run(clock, days=1)
    left = {k for k in _keys(rt, tenant_id) if k.startswith("digest:")}
    assert left == {k for k in digests if not k.startswith(f"digest:{old}")}, (
        "the old day's rows go; the recent day's, within the keeping period, stay"
    )

    sent = len(smtp.messages)
    _morning(rt, redis, clock, clock.now)
    _morning(rt, redis, clock, clock.now)  # the same morning's ticks again
    today = [k for k in _keys(rt, tenant_id) if k.startswith(f"digest:{clock.now.date()}:")]
    assert len(smtp.messages) - sent == len(today) > 0, "today's digest, once per rep"
    assert _sent_twice(smtp) == []
