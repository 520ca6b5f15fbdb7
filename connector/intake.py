"""Persist, then enqueue: how every accepted CRM event enters Deal Radar.

The event is committed to the inbox first (its dedupe key makes a duplicate a no-op decided by
the database); only then is its refresh requested on Redis. If Redis is down or slow, the event
is still accepted (the CRM gets its 2xx and does not retry) and the sweeper requests it once
Redis is back. If the database is down, nothing is accepted and the caller answers 503, so the
CRM retries later.
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
class Accepted:
    inbox_id: int | None
    """None when the event was a duplicate of one already received."""
    queued: bool
    """False when Redis could not take the request (the sweeper will)."""


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
    with store.tenant(tenant_id) as s:
        inbox_id = work.receive(
            s, tenant_id, dedupe_key=dedupe_key, source=source, body=body, deal_ids=deal_ids,
            now=now,
        )  # fmt: skip
    if inbox_id is None:
        return Accepted(inbox_id=None, queued=False)
    try:
        queues.request_refresh(redis, tenant_id, deal_ids, window=window)
    except RedisError as exc:
        log.warning(
            "tenant %s: event %s kept in the inbox, Redis unavailable (%s); the sweeper will "
            "queue it", tenant_id, inbox_id, type(exc).__name__,
        )  # fmt: skip
        return Accepted(inbox_id=inbox_id, queued=False)
    return Accepted(inbox_id=inbox_id, queued=True)
