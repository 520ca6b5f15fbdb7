"""Persist, then enqueue: how every accepted CRM event enters Deal Radar.

A delivery's events are committed to the inbox first, in one statement whose unique dedupe key
makes a duplicate a no-op decided by the database; only then is a refresh of their deals
requested on Redis. If Redis is down or slow, the events are still accepted (the CRM gets its
2xx and does not retry) and the sweeper requests them once Redis is back. If the database is
down, nothing is accepted and the caller answers 503, so the CRM retries later.

Group commit: in a web process serving several requests at once (gunicorn's gthread workers),
deliveries that arrive while another is being committed wait, and are then written together by
one of them: one INSERT per tenant and source, one COMMIT (one fsync). Each delivery is still
answered only after its own events are committed, and learns which of them were new; an event
repeated by two deliveries of the same group is new for the first only. A delivery never waits
for more than the group being written before its own. The web app's Intake then hands the
deals to its RefreshRequests, which sends the process's requests together a moment later
(connector.refresh_requests); without one, the leader requests them, one call per tenant,
before its group is answered.
"""

from __future__ import annotations

import contextlib
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from redis import Redis
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from connector import queues
from connector.refresh_requests import RefreshRequests, send
from connector.store import work
from connector.store.db import Store
from connector.store.models import InboxEvent
from connector.store.sql import insert_new_many

MAX_GROUP_EVENTS = 2_000
"""Events written in one group commit; a larger backlog is written by the next leader."""
GROUP_WHY = "a group commit of webhook deliveries for several tenants; every row names its tenant"


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
    """False when nothing needed queueing or Redis could not take it (the sweeper will);
    through an Intake's RefreshRequests, True once handed to it."""
    inbox_id: int | None = None
    """For a single event: its inbox row, None when it was a duplicate."""


class InboxUnavailable(RuntimeError):
    """The database did not take a group of deliveries: answer 503, the sender retries."""


@dataclass
class _Delivery:
    tenant_id: str
    source: str
    events: Sequence[Incoming]
    body: str
    now: datetime
    done: bool = False
    result: Accepted | None = None
    error: BaseException | None = None
    wake: threading.Lock = field(default_factory=lambda: _held())
    """Released once: when the delivery was written, or when it is first in line (to lead)."""


def _held() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


class Intake:
    """The inbox's door for one process: concurrent deliveries share one transaction.

    The first delivery in line is the leader: it writes every delivery queued behind it (up to
    MAX_GROUP_EVENTS events), hands the line to the next in line, who writes the next group
    meanwhile, requests the refreshes of its own group's deals (or hands them to `refreshes`)
    and wakes its group. With one request at a time (gunicorn's sync workers) each group is one
    delivery.

    On PostgreSQL a group is one INSERT on a connection of the Intake's own in autocommit mode:
    the statement is its transaction, committed (and flushed to disk) before it returns, in one
    round trip (work.InboxInsert). A connection that failed is dropped and a new one opened for
    the next group."""

    def __init__(
        self,
        store: Store,
        redis: Redis,
        *,
        window: float = queues.COALESCE_SECONDS,
        refreshes: RefreshRequests | None = None,
    ) -> None:
        self.store = store
        self.redis = redis
        self.window = window
        self.refreshes = refreshes
        """Where the refresh requests go once the events are committed: a RefreshRequests
        sends them in the background, merged (the web app); without one, the leader sends
        them before its group is answered."""
        self._line: deque[_Delivery] = deque()
        self._mutex = threading.Lock()
        self._connection: Any = None
        """The leader's own psycopg connection (taken from the pool and detached), opened at the
        first group and replaced after a failure."""
        self._insert: work.InboxInsert | None = None
        """The inbox insert prepared on that connection."""

    def accept(
        self,
        tenant_id: str,
        events: Sequence[Incoming],
        *,
        source: str,
        body: str,
        now: datetime,
    ) -> Accepted:
        """Commit the new events of one delivery, then request their deals' refresh; raises
        InboxUnavailable when the database refused them."""
        mine = _Delivery(tenant_id, source, events, body, now)
        with self._mutex:
            self._line.append(mine)
            first = len(self._line) == 1
        if not first:
            mine.wake.acquire()  # each waiter its own lock: waking one wakes no other
        if not mine.done:  # first in line: lead a group, this delivery and those behind it
            with self._mutex:
                group, size = [], 0
                for waiting in self._line:
                    if group and size + len(waiting.events) > MAX_GROUP_EVENTS:
                        break
                    group.append(waiting)
                    size += len(waiting.events)
            self._lead(group)
        if mine.error is not None:
            if isinstance(
                mine.error, SQLAlchemyError | self.store.engine.dialect.loaded_dbapi.Error
            ):
                raise InboxUnavailable("the database did not take the events") from mine.error
            raise mine.error  # a bug, not an outage: a 500 with its traceback
        assert mine.result is not None
        return mine.result

    def _lead(self, group: list[_Delivery]) -> None:
        """Write the group and hand the line to the next leader, then request the refreshes
        (while the next group is being written) and hand every delivery its answer."""
        handed_off: list[bool] = []

        def hand_off() -> None:
            self._hand_off(group)
            handed_off.append(True)

        outcomes: list[Accepted | BaseException]
        try:
            try:
                commit = _commit(
                    self.store, self.redis, group, self.window, self._write, hand_off,
                    self.refreshes,
                )  # fmt: skip
                outcomes = list(commit)
            except Exception as exc:
                if not handed_off and len(group) > 1 and _refused_for_its_data(exc):
                    # One delivery's rows (a key too long) must not fail the others.
                    outcomes = [self._alone(delivery) for delivery in group]
                else:
                    outcomes = [exc] * len(group)
        except BaseException as exc:  # the worker is stopping: nobody may wait for this group
            outcomes = [exc] * len(group)
            raise
        finally:
            if not handed_off:
                self._hand_off(group)
            for each, outcome in zip(group, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    each.error = outcome
                else:
                    each.result = outcome
                each.done = True
            for each in group[1:]:
                each.wake.release()

    def _hand_off(self, group: list[_Delivery]) -> None:
        """The group leaves the line; the first delivery behind it leads the next group."""
        with self._mutex:
            for _ in group:
                self._line.popleft()
            following = self._line[0] if self._line else None
        if following is not None:
            following.wake.release()

    def _alone(self, delivery: _Delivery) -> Accepted | Exception:
        try:
            (result,) = _commit(
                self.store, self.redis, [delivery], self.window, self._write,
                refreshes=self.refreshes,
            )  # fmt: skip
        except Exception as exc:
            return exc
        return result

    def _write(self, rows: list[work.InboxRow]) -> dict[tuple[str, str], int]:
        if self.store.dialect != "postgresql":
            return _write_in_session(self.store, rows)
        try:
            insert = self._insert
            if insert is None:
                raw = self.store.engine.raw_connection()  # the store's connect arguments
                driver = raw.driver_connection
                raw.detach()  # kept by this Intake, never returned to the pool
                driver.autocommit = True
                self._connection = driver
                insert = self._insert = work.InboxInsert(driver)
            written = insert(rows)
        except Exception:
            if self._connection is not None:
                with contextlib.suppress(Exception):
                    self._connection.close()
                self._connection = None
            self._insert = None
            raise
        return {(tenant_id, key): row_id for tenant_id, key, row_id in written}


Write = Callable[[list[work.InboxRow]], dict[tuple[str, str], int]]


def _write_in_session(store: Store, rows: list[work.InboxRow]) -> dict[tuple[str, str], int]:
    """Insert the rows in one transaction of a store session, one statement per tenant."""
    tenants: dict[str, list[work.InboxRow]] = defaultdict(list)
    for row in rows:
        tenants[row[0]].append(row)
    written: dict[tuple[str, str], int] = {}
    session = (
        store.tenant(next(iter(tenants))) if len(tenants) == 1 else store.all_tenants(GROUP_WHY)
    )
    with session as s:
        for tenant_id, tenant_rows in tenants.items():
            for key, row_id in insert_new_many(
                s, InboxEvent, work.as_dicts(tenant_rows), ("tenant_id", "dedupe_key"),
                returning=("dedupe_key", "id"),
            ):  # fmt: skip
                written[(tenant_id, key)] = row_id
    return written


def _commit(
    store: Store,
    redis: Redis,
    group: Sequence[_Delivery],
    window: float,
    write: Write | None = None,
    written: Callable[[], None] | None = None,
    refreshes: RefreshRequests | None = None,
) -> list[Accepted]:
    """Write a group of deliveries in one transaction, then (after calling `written`) request
    their refreshes: through `refreshes` when given, else from Redis now."""
    owner: dict[tuple[str, str], int] = {}
    """(tenant, dedupe key) -> the delivery that brought it first"""
    rows: list[work.InboxRow] = []
    for index, delivery in enumerate(group):
        claimed = []
        for event in delivery.events:
            key = (delivery.tenant_id, event.dedupe_key)
            if key not in owner:
                owner[key] = index
                claimed.append((event.dedupe_key, event.deal_ids, event.body or delivery.body))
        rows += work.inbox_rows(
            delivery.tenant_id, claimed, source=delivery.source, now=delivery.now
        )
    new = (write or (lambda rows: _write_in_session(store, rows)))(rows) if rows else {}
    if written is not None:
        written()

    fresh: list[dict[str, int]] = [{} for _ in group]
    """per delivery: its new events' inbox ids by dedupe key"""
    mine: list[set[str]] = [set() for _ in group]
    """per delivery: the deals of its new events"""
    for index, delivery in enumerate(group):
        for event in delivery.events:
            key = (delivery.tenant_id, event.dedupe_key)
            if key in new and owner[key] == index:
                fresh[index][event.dedupe_key] = new[key]
                mine[index].update(event.deal_ids)
    if refreshes is not None:
        for index, delivery in enumerate(group):
            if fresh[index]:
                refreshes.add(delivery.tenant_id, mine[index], source=delivery.source,
                              events=len(fresh[index]))  # fmt: skip
        queued = dict.fromkeys((d.tenant_id for d in group), True)
    else:
        deals: dict[str, set[str]] = defaultdict(set)
        for index, delivery in enumerate(group):
            deals[delivery.tenant_id] |= mine[index]
        queued = {tenant: send(redis, tenant, ids, window) for tenant, ids in deals.items() if ids}

    results: list[Accepted] = []
    for index, delivery in enumerate(group):
        ids = fresh[index]
        single = next(iter(ids.values())) if len(delivery.events) == 1 and ids else None
        results.append(
            Accepted(
                new=len(ids),
                queued=bool(mine[index]) and queued[delivery.tenant_id],
                inbox_id=single,
            )
        )
    return results


def _refused_for_its_data(exc: Exception) -> bool:
    """A statement refused for what it carries (a constraint, a value), not for the database
    being unreachable: SQLAlchemy's or the driver's integrity and data errors (SQLSTATE 22, 23)."""
    if isinstance(exc, IntegrityError | DataError):
        return True
    return str(getattr(exc, "sqlstate", None) or "")[:2] in ("22", "23")


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
    """Commit the new events of one delivery to the inbox, then request their deals' refresh
    (no group: for jobs and scripts; the web app uses its Intake).

    `body` is the delivery's raw body, kept for the events that do not carry their own."""
    (result,) = _commit(store, redis, [_Delivery(tenant_id, source, events, body, now)], window)
    return result


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
