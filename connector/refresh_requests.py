"""A web process's refresh requests, sent to Redis together and off the request path.

A webhook is answered once its events are committed to the inbox; asking Redis to refresh their
deals is not part of that answer (with Redis down the CRM still gets its 2xx, and the sweeper
requests the pending events later). So the Intake hands each group's deals to a RefreshRequests
and answers at once; a thread of the process sends what it was handed FLUSH_SECONDS after the
first of it, one `queues.request_refresh` per tenant for every delivery of that time. A round
trip to Redis costs a gunicorn worker about a tenth of a webhook's CPU (a call of the Python
client, the thread's sleep and wake-up), and the deliveries waited for it; now a busy process
makes a few per second whatever its rate. The deals reach the tenant's pending set a few
milliseconds later, well inside the coalescing window (2 s) that delays their pull anyway.

The thread runs while there is something to send and ends when a flush leaves nothing behind;
it is not a daemon, so a process that exits normally (a gunicorn worker told to stop) sends what
it holds first. What a killed process held is lost as a Redis outage loses it: the events stay
pending in the inbox and the sweeper requests them after `stale_seconds`. Events are counted in
`dealradar_events_queued_total` once Redis took their refresh request or refused it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable

from redis import Redis
from redis.exceptions import RedisError

from connector import queues

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.05
"""How long the first request waits for others before they are sent together."""

Sent = Callable[[str, int, bool], None]
"""Told (source, events, whether Redis took them) for the events of each request sent."""


class RefreshRequests:
    """Refresh requests held for `delay` seconds, then sent together by a thread of the
    process; `sent` is told how many events each request carried and whether Redis took it."""

    def __init__(
        self,
        redis: Redis,
        *,
        window: float = queues.COALESCE_SECONDS,
        delay: float = FLUSH_SECONDS,
        sent: Sent | None = None,
    ) -> None:
        self.redis = redis
        self.window = window
        self.delay = delay
        self.sent = sent
        self._deals: defaultdict[str, set[str]] = defaultdict(set)
        self._events: Counter[tuple[str, str, bool]] = Counter()
        """New events by tenant, source and whether they named deals, counted once sent."""
        self._held = threading.Lock()
        self._sender: int | None = None
        """The process whose sender thread is running, if one is (a forked child has none)."""

    def add(self, tenant_id: str, deal_ids: Iterable[str], *, source: str, events: int) -> None:
        """Ask for the refresh of these deals, named by `events` new events from `source`
        (none: the events are counted as not queued); sent within `delay` seconds."""
        deal_ids = set(deal_ids)
        with self._held:
            if deal_ids:
                self._deals[tenant_id] |= deal_ids
            self._events[(tenant_id, source, bool(deal_ids))] += events
            if self._sender != os.getpid():
                self._sender = os.getpid()
                threading.Thread(target=self._send, name="refresh-requests").start()

    def flush(self) -> None:
        """Send everything held now, one request per tenant."""
        with self._held:
            deals, self._deals = self._deals, defaultdict(set)
            events, self._events = self._events, Counter()
        taken = {tenant_id: send(self.redis, tenant_id, ids, self.window)
                 for tenant_id, ids in deals.items()}  # fmt: skip
        if self.sent is not None:
            for (tenant_id, source, named_deals), count in events.items():
                self.sent(source, count, named_deals and taken[tenant_id])

    def _send(self) -> None:
        """The sender thread: a flush every `delay` seconds while there is anything to send."""
        while True:
            time.sleep(self.delay)  # what arrives meanwhile goes in the same calls
            try:
                self.flush()
            except Exception:  # a bug: logged; the sweeper requests the events later
                log.exception("refresh requests could not be sent; the sweeper will request them")
            with self._held:
                if not self._events:
                    self._sender = None
                    return


def send(redis: Redis, tenant_id: str, deal_ids: set[str], window: float) -> bool:
    """Request the refresh of a tenant's deals now; False when Redis did not take it (logged:
    the events stay pending in the inbox, and the sweeper requests them)."""
    try:
        queues.request_refresh(redis, tenant_id, sorted(deal_ids), window=window)
    except RedisError as exc:
        log.warning(
            "tenant %s: new events kept in the inbox, Redis unavailable (%s); the sweeper will "
            "queue them", tenant_id, type(exc).__name__,
        )  # fmt: skip
        return False
    return True
