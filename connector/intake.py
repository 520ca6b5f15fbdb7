"""Persist, then enqueue: how every accepted CRM event enters Deal Radar.

A delivery's events are committed to the inbox first, in one statement whose unique dedupe key
makes a duplicate a no-op decided by the database; only then is a refresh of their deals
requested on Redis, once for the whole delivery. If Redis is down or slow, the events are still
accepted (the CRM gets its 2xx and does not retry) and the sweeper requests them once Redis is
back. If the database is down, nothing is accepted and the caller answers 503, so the CRM
retries later.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from redis import Redis
from redis.exceptions import RedisError

from connector import queues
from connector.store import work
from connector.store.db import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Incoming:
    """One event of a delivery: its dedupe key and the deals it concerns (none known yet: it
    is kept `unresolved`, for the adapter to place)."""

    dedupe_key: str
    deal_ids: Sequence[str]
    body: str | None = None
    """The event's own JSON when the delivery carries several; else the delivery's body."""


@dataclass(frozen=True)
class Accepted:
    new: int
    """How many of the events were not received before (duplicates are dropped)."""
    queued: bool
    """False when nothing needed queueing or Redis could not take it (the sweeper will)."""
    inbox_id: int | None = None
    """For a single event: its inbox row, None when it was a duplicate."""


def accept_events(
    store: Store,
    redis: Redis,
    tenant_id: str,
    events: Sequence[Incoming],
    *,
    source: str,
    body: str,
    now: datetime,
    window: float = queues.COALESCE_SECONDS,
) -> Accepted:
    """Commit the new events of one delivery to the inbox, then request their deals' refresh.

    `body` is the delivery's raw body, kept for the events that do not carry their own."""
    with store.tenant(tenant_id) as s:
        new = work.receive_many(
            s, tenant_id, [(e.dedupe_key, e.deal_ids, e.body or body) for e in events],
            source=source, now=now,
        )  # fmt: skip
    deal_ids = sorted({d for e in events if e.dedupe_key in new for d in e.deal_ids})
    inbox_id = next(iter(new.values())) if len(events) == 1 and new else None
    if not deal_ids:
        return Accepted(new=len(new), queued=False, inbox_id=inbox_id)
    try:
        queues.request_refresh(redis, tenant_id, deal_ids, window=window)
    except RedisError as exc:
        log.warning(
            "tenant %s: %d events kept in the inbox, Redis unavailable (%s); the sweeper will "
            "queue them", tenant_id, len(new), type(exc).__name__,
        )  # fmt: skip
        return Accepted(new=len(new), queued=False, inbox_id=inbox_id)
    return Accepted(new=len(new), queued=True, inbox_id=inbox_id)


def accept_event(
    store: Store,
    redis: Redis,
    tenant_id: str,
    *,
    dedupe_key: str,
    source: str,
    body: str,
    deal_ids: Sequence[str],
    now: datetime,
    window: float = queues.COALESCE_SECONDS,
) -> Accepted:
    """`accept_events` for a delivery of one event."""
    return accept_events(
        store, redis, tenant_id, [Incoming(dedupe_key, deal_ids)], source=source, body=body,
        now=now, window=window,
    )  # fmt: skip
