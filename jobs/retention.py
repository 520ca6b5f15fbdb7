"""Which finished outbox rows of CRM tasks, notes, mails and digests the daily purge deletes.

Their keys are what keeps a task, a note or a message from being made twice, so a row goes only
once nothing can propose its key again, nor read it to decide anything: done or failed (never
pending, nor `sending`, which a killed worker leaves and which may stand for a message that went
out), last due and finished before the keeping period (jobs.purge.KEEP_DONE_EFFECTS: a failure
is kept that long after it happened, for an admin to see among `tenants status`'s outbox
failures; rows failed before done_at was stamped on failures go by their due day), and by its key:

- `crm_task:<episode>`, `crm_task_done:<episode>`: once the episode has ended, before the
  keeping period, and its end has been dispatched (see below). A task's key is proposed by the
  dispatch of the episode's `alert.started` only; its completion's by the dispatch of
  `alert.ended`, which proposes it only if the task's row exists: deleted before then, the task
  would stay open for good.
- `crm_task_owner:<episode>:<n>:<owner>`: the same. Hand-overs are proposed for open episodes
  only (by a refresh, by the daily reading of users), and one whose hand-over was refused or its
  task gone is proposed again under the same key; an ended episode never opens again (the alert
  back is a new episode, under a new id).
- `mail:` or `slack:`, an event's key, `:<rep>`: once that event has been dispatched: an
  episode's `alert.started` (born as it started), `alert.ended` (as it ended), a grade change.
- `crm_note:health.grade_changed:<deal>:<day>:<from>:<to>`, and the mail and Slack message of
  a grade change: the key names the tenant's local day of the evaluation that saw the change,
  one note a day and transition. A local day is never more than one day off the UTC day, so a
  day two days before the UTC day of the oldest event still to be dispatched is one that no such
  event names, nor any evaluation to come.
- `digest:<day>`, and its mails `digest:<day>:<rep>`, `digest:<day>:manager:<email>`: once the
  day is two days before the keeping period's UTC day. The tick plans today's digest or, past
  midnight, yesterday's (jobs.digest), never an older day's; its mails are proposed as its row
  is completed, once (a day's digest still unsent when a later day's runs is closed unsent, and
  only the latest day's is sent).

An event is dispatched once (jobs.actions): it is born with the state change it reports, in an
outbox row created at that instant (an episode's start or end, in the transaction that records
it), and the row is completed once every handler has proposed its effects; a done or failed row
is never dispatched again. So every event born before the tenant's oldest pending event row has
been dispatched for good. Such a row stays pending long only while its dispatch is stalled (a
suspended tenant's, which the sweeper leaves alone): the rows its events would propose stay too.
The episodes are read before that row, so that an episode seen ended has its end's row seen too;
an event whose transaction is not yet committed is younger than the keeping period by far.

Episode ids are never handed out again (connector.store.orphans keeps a tenant's newest), so a
key names one episode for good. An episode no longer there was deleted by the daily purge, once
its deal was gone and it had ended KEEP_ORPHANS before (`gone_before`). Any other key is kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from connector.store import work
from connector.store.models import AlertEpisode, OutboxEffect
from connector.store.orphans import Batch
from connector.store.sql import tenant_of
from connector.store.times import from_db
from jobs import digest, notify, pipeline
from jobs.crm_effects import NOTE, TASK, TASK_DONE, TASK_OWNER

KINDS = (TASK, TASK_DONE, TASK_OWNER, NOTE, notify.MAIL, notify.SLACK, digest.DIGEST)

STARTED, ENDED, SEEN, PLANNED = "started", "ended", "seen", "planned"
_DAY = r"(\d{4}-\d\d-\d\d)"
_RULES = [
    (re.compile(rf"(?:{TASK}|{TASK_DONE}):(\d+)"), ENDED),
    (re.compile(rf"{TASK_OWNER}:(\d+):.*"), ENDED),
    (re.compile(r"(?:mail|slack):alert\.started:(\d+):.*"), STARTED),
    (re.compile(r"(?:mail|slack):alert\.ended:(\d+):.*"), ENDED),
    (re.compile(rf"(?:{NOTE}|mail|slack):health\.grade_changed:.+:{_DAY}:\w+:\w+(?::.*)?"), SEEN),
    (re.compile(rf"{digest.DIGEST}:{_DAY}(?::.*)?"), PLANNED),
]
"""What each key waits for: its episode's start or end dispatched (the episode id), the events
of its day dispatched (the day), its digest's day past (the day)."""


def _waits_for(key: str) -> tuple[str, int | date] | None:
    """What the key waits for, None when no rule reads it (such a key is kept)."""
    for pattern, what in _RULES:
        found = pattern.fullmatch(key)
        if found:
            value = found.group(1)
            if what in (STARTED, ENDED):
                return what, int(value)
            try:
                return what, date.fromisoformat(value)
            except ValueError:  # a CRM's id shaped like a day that is none: kept, never a stop
                return None
    return None


def finished_effects(
    session: Session, before: datetime, limit: int, after: Any = None, *, gone_before: datetime
) -> Batch:
    """Delete, among up to `limit` of the session tenant's finished rows of KINDS last due and
    finished before `before` (after the key `after`, in key order), those whose key can never
    be proposed again (see the module's docstring); episodes no longer in the store ended
    before `gone_before`."""
    tenant_id = tenant_of(session)
    finished = [
        OutboxEffect.tenant_id == tenant_id,
        OutboxEffect.kind.in_(KINDS),
        *work.finished_before(before),
    ]
    keyset = [OutboxEffect.key > after] if after is not None else []
    keys = list(
        session.scalars(
            select(OutboxEffect.key)
            .where(*finished, *keyset)
            .order_by(OutboxEffect.key)
            .limit(limit)
        )
    )
    if not keys:
        return 0, None
    waits = {key: _waits_for(key) for key in keys}
    episodes = _episodes(session, {w[1] for w in waits.values() if w and w[0] in (STARTED, ENDED)})
    pending = _oldest_pending_event(session)
    doomed = [
        key for key, wait in waits.items()
        if wait is not None and _past(wait, episodes, before, pending, gone_before)
    ]  # fmt: skip
    deleted = 0
    if doomed:
        # The same conditions again: a row put back to work since it was read stays.
        deleted = session.execute(
            delete(OutboxEffect).where(*finished, OutboxEffect.key.in_(doomed))
        ).rowcount
    return deleted, keys[-1] if len(keys) == limit else None


Times = dict[int, tuple[datetime | None, datetime | None]]


def _episodes(session: Session, ids: Iterable[Any]) -> Times:
    """(started at, ended at) of these episodes of the session's tenant that are still there."""
    wanted = sorted(ids)
    if not wanted:
        return {}
    rows = session.execute(
        select(AlertEpisode.id, AlertEpisode.started_at, AlertEpisode.ended_at).where(
            AlertEpisode.tenant_id == tenant_of(session), AlertEpisode.id.in_(wanted)
        )
    )
    return {i: (from_db(started), from_db(ended)) for i, started, ended in rows}


def _oldest_pending_event(session: Session) -> datetime | None:
    """When the session tenant's oldest event row still to be dispatched was created."""
    oldest = session.scalar(
        select(func.min(OutboxEffect.created_at)).where(
            OutboxEffect.tenant_id == tenant_of(session),
            OutboxEffect.kind == pipeline.EVENT,
            OutboxEffect.status == "pending",
        )
    )
    return from_db(oldest)


def _past(
    wait: tuple[str, Any],
    episodes: Times,
    before: datetime,
    pending: datetime | None,
    gone_before: datetime,
) -> bool:
    """Whether what the key waits for is over for good, `before` being where the keeping period
    begins and `pending` when the oldest event still to be dispatched was born (None: none)."""
    what, value = wait
    if what == PLANNED:
        return value <= _utc_day(before) - timedelta(days=2)
    if what in (STARTED, ENDED) and value not in episodes:
        return pending is None or gone_before <= pending
    # Born before both, an event has been dispatched, and long enough ago.
    horizon = min(before, pending) if pending is not None else before
    if what == SEEN:
        return value <= _utc_day(horizon) - timedelta(days=2)
    started, ended = episodes[value]
    moment = started if what == STARTED else ended
    return moment is not None and moment < horizon


def _utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()
