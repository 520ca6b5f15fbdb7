"""Queues, coalesced refresh requests and deal locks, all on Redis.

Redis only carries work; the database is the record (the inbox and the outbox), and the sweeper
puts back whatever Redis lost. Work is enqueued by the job's dotted name, so nothing imports
`jobs`.

Coalescing: a request to refresh deals adds their ids to the tenant's pending set and, unless a
drain is already scheduled for the tenant, schedules one `window` seconds later. The drain takes
the whole set at once, so twenty events for a deal within the window cause one pull. The drain
clears the "scheduled" mark before it starts, so an event arriving during a refresh schedules
exactly one more.

Production Redis needs `appendonly yes` (scheduled drains and queued jobs survive a restart) and
`maxmemory-policy noeviction` (a full Redis refuses writes, which the web tier turns into "the
sweeper will enqueue it", instead of silently evicting queued jobs).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import timedelta

from redis import Redis
from redis.exceptions import LockError, NoScriptError, RedisError
from rq import Queue

log = logging.getLogger(__name__)

EVENTS = "events"
REFRESH = "refresh"
WRITEBACK = "writeback"
ACTIONS = "actions"
SWEEP = "sweep"
QUEUES = (EVENTS, REFRESH, WRITEBACK, ACTIONS, SWEEP)
"""In the order a worker serves them: live changes before the nightly sweep."""

COALESCE_SECONDS = 2.0
"""Events for a tenant within this window cause one pull."""
DEAL_LOCK_SECONDS = 90
"""A deal lock outlives any refresh (jobs time out at 60 s), then expires if its worker died."""
REFRESH_TIMEOUT = 60
"""Seconds a refresh job may run before RQ stops it, below DEAL_LOCK_SECONDS on purpose."""
SETUP_TIMEOUT = 1800
"""Seconds an install's setup job (provisioning, the initial sync's paging) may run."""

_PREFIX = "dealradar"


def pending_key(tenant_id: str) -> str:
    return f"{_PREFIX}:pending:{tenant_id}"


def scheduled_key(tenant_id: str, what: str = "drain") -> str:
    return f"{_PREFIX}:scheduled:{what}:{tenant_id}"


def backoff_key(tenant_id: str) -> str:
    return f"{_PREFIX}:backoff:{tenant_id}"


def deal_lock_key(tenant_id: str, deal_id: str) -> str:
    return f"{_PREFIX}:lock:deal:{tenant_id}:{deal_id}"


def queue(redis: Redis, name: str) -> Queue:
    return Queue(name, connection=redis)


def enqueue_once(
    redis: Redis,
    name: str,
    func: str,
    tenant_id: str,
    *,
    what: str,
    delay: float = 0.0,
    hold: float = 60.0,
    timeout: int = REFRESH_TIMEOUT,
    args: tuple[str, ...] = (),
) -> bool:
    """Enqueue `func(tenant_id, *args)` unless one is already waiting for this tenant (`what`
    names the kind of work); True if this call enqueued it. The mark lapses after
    `delay + hold` seconds, so a job lost with a Redis restart is scheduled again by the next
    request."""
    mark = scheduled_key(tenant_id, what)
    ttl_ms = int((delay + hold) * 1000)
    if not redis.set(mark, "1", nx=True, px=ttl_ms):
        return False
    q = queue(redis, name)
    job_id = f"{what}-{tenant_id}-{uuid.uuid4().hex[:8]}"
    try:
        if delay > 0:
            q.enqueue_in(timedelta(seconds=delay), func, tenant_id, *args, job_id=job_id,
                         job_timeout=timeout)  # fmt: skip
        else:
            q.enqueue(func, tenant_id, *args, job_id=job_id, job_timeout=timeout)
    except RedisError:
        # A mark without its job would turn away every request until it lapses.
        with suppress(RedisError):
            redis.delete(mark)
        raise
    return True


def enqueue_now_or_later(
    redis: Redis, name: str, func: str, tenant_id: str, *, what: str, delay: float = 0.0
) -> bool:
    """`enqueue_once` of a run wanted now under the mark `what`, of one `delay` seconds ahead
    (a retry) under a later mark of its own: a retry scheduled far ahead, for one failing
    target, never holds back a run wanted now for the others. The run clears both marks as it
    starts (`runs_started`)."""
    mark = what if delay <= 0 else _later(what)
    return enqueue_once(redis, name, func, tenant_id, what=mark, delay=delay)


def runs_started(redis: Redis, tenant_id: str, what: str) -> None:
    """A run of `what` has started: the next request, now or later, schedules another."""
    redis.delete(scheduled_key(tenant_id, what), scheduled_key(tenant_id, _later(what)))


def _later(what: str) -> str:
    return f"{what}_later"


_REQUEST = """
for i = 3, #ARGV, 1000 do
  redis.call('sadd', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
local delay = math.max(tonumber(ARGV[1]), redis.call('pttl', KEYS[2]))
if redis.call('set', KEYS[3], '1', 'NX', 'PX', delay + tonumber(ARGV[2])) then
  return delay
end
return -1
"""
"""Add the deal ids to the pending set and, unless a drain is already scheduled, mark one as
scheduled after the window or the tenant's backoff, whichever is longer: one round trip for what
a webhook does on every delivery. Returns the delay in ms, or -1 when a drain was scheduled."""

_REQUEST_SHA = hashlib.sha1(_REQUEST.encode()).hexdigest()

DRAIN_HOLD = 60.0
"""Seconds the "drain scheduled" mark outlives the drain's start (enqueue_once's `hold`)."""


def request_refresh(
    redis: Redis, tenant_id: str, deal_ids: Iterable[str], *, window: float = COALESCE_SECONDS
) -> bool:
    """Ask for these deals to be pulled and evaluated soon, coalesced per tenant; True when this
    call scheduled the drain. While the tenant is backing off from CRM errors, the drain waits
    for the backoff instead of the window."""
    ids = list(deal_ids)
    if not ids:
        return False
    keys = (pending_key(tenant_id), backoff_key(tenant_id), scheduled_key(tenant_id, "drain"))
    args = (len(keys), *keys, int(window * 1000), int(DRAIN_HOLD * 1000), *ids)
    try:
        delay_ms = redis.evalsha(_REQUEST_SHA, *args)
    except NoScriptError:  # the first call since Redis started
        delay_ms = redis.eval(_REQUEST, *args)
    if delay_ms < 0:
        return False
    q = queue(redis, REFRESH)
    job_id = f"drain-{tenant_id}-{uuid.uuid4().hex[:8]}"
    if delay_ms > 0:
        q.enqueue_in(timedelta(milliseconds=delay_ms), "jobs.refresh.drain", tenant_id,
                     job_id=job_id, job_timeout=REFRESH_TIMEOUT)  # fmt: skip
    else:
        q.enqueue("jobs.refresh.drain", tenant_id, job_id=job_id, job_timeout=REFRESH_TIMEOUT)
    return True


def request_setup(redis: Redis, tenant_id: str, *, delay: float = 0.0) -> bool:
    """Enqueue the tenant's install setup (jobs.install.setup) unless one is waiting already."""
    return enqueue_once(
        redis, EVENTS, "jobs.install.setup", tenant_id, what="setup",
        delay=delay, hold=SETUP_TIMEOUT, timeout=SETUP_TIMEOUT,
    )  # fmt: skip


SWEEP_AGAIN_HOLD = 900.0
"""Seconds a queued re-sweep (new settings) holds back another: it waits on the sweep queue,
served last, behind other tenants' chunks of up to 10 minutes. One lost is asked again by a
save this much later, or by the cron tick when no save comes (jobs.schedule); a second queued
behind a first still waiting longer begins a new pass, and the first's chunk does nothing."""


def sweep_again_mark(day: str) -> str:
    """The mark of a queued, not yet started re-sweep of a tenant's local `day`."""
    return f"sweep_again_{day}"


def request_sweep_again(redis: Redis, tenant_id: str, day: str) -> bool:
    """Enqueue the day's sweep again under new settings (jobs.sweep.again) unless one is queued
    and not started: it reads the settings when it runs, so one waiting serves every save made
    before it starts. It clears the mark as it starts (`runs_started`), so a save made while it
    runs, which it may not have read, queues one more. True if this call enqueued it."""
    return enqueue_once(
        redis, SWEEP, "jobs.sweep.again", tenant_id, what=sweep_again_mark(day),
        hold=SWEEP_AGAIN_HOLD, args=(day,),
    )  # fmt: skip


def take_pending(redis: Redis, tenant_id: str, limit: int) -> list[str]:
    """Pop up to `limit` pending deal ids of a tenant."""
    popped = redis.spop(pending_key(tenant_id), limit) or []
    return sorted(x.decode() if isinstance(x, bytes) else x for x in popped)


def unlocked(redis: Redis, tenant_id: str, deal_ids: Sequence[str]) -> list[str]:
    """The deals no worker holds a lock on."""
    pipe = redis.pipeline(transaction=False)
    for deal_id in deal_ids:
        pipe.exists(deal_lock_key(tenant_id, deal_id))
    return [d for d, held in zip(deal_ids, pipe.execute(), strict=True) if not held]


_ACQUIRE = """
local taken = {}
for i, key in ipairs(KEYS) do
  if redis.call('set', key, ARGV[1], 'NX', 'PX', ARGV[2]) then
    taken[#taken + 1] = i
  end
end
return taken
"""

_RELEASE = """
local released = 0
for i, key in ipairs(KEYS) do
  if redis.call('get', key) == ARGV[1] then
    redis.call('del', key)
    released = released + 1
  end
end
return released
"""


_RENEW = """
local renewed = 0
for i, key in ipairs(KEYS) do
  if redis.call('get', key) == ARGV[1] then
    redis.call('pexpire', key, ARGV[2])
    renewed = renewed + 1
  end
end
return renewed
"""


@contextmanager
def kept_alive(renew: Callable[[], object], every: float) -> Iterator[None]:
    """Renew a lock every `every` seconds while the work inside runs, so that work slower than
    the lock's life (a pull waiting out 429s, a flush of thousands of deals one call each) is
    not taken up by a second worker meanwhile. Renewing stops at the first failure (the lock
    lost: `renew` returns False or raises), logged; the lock's own life is the bound again."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            try:
                if renew() is False:
                    raise LockError("not held any more")
            except (LockError, RedisError) as exc:
                log.warning("a lock could not be renewed (%s); the work goes on unguarded", exc)
                return

    thread = threading.Thread(target=loop, name="lock-renewal", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class DealLocks:
    """Locks on many deals at once (one round trip each way), so two workers never refresh the
    same deal together. Each lock expires after DEAL_LOCK_SECONDS, so a dead worker's locks
    free themselves; only the holder's token releases them."""

    def __init__(self, redis: Redis, tenant_id: str, ttl: float = DEAL_LOCK_SECONDS) -> None:
        self.redis = redis
        self.tenant_id = tenant_id
        self.ttl_ms = int(ttl * 1000)
        self.token = uuid.uuid4().hex
        self.held: list[str] = []

    def acquire(self, deal_ids: Sequence[str]) -> tuple[list[str], list[str]]:
        """Take the free ones; returns (taken, busy). One script call for the whole batch: a
        sweep locks hundreds of deals at a time."""
        if not deal_ids:
            return [], []
        keys = [deal_lock_key(self.tenant_id, d) for d in deal_ids]
        got = {int(i) for i in self.redis.eval(_ACQUIRE, len(keys), *keys, self.token, self.ttl_ms)}
        taken = [d for i, d in enumerate(deal_ids, start=1) if i in got]
        busy = [d for i, d in enumerate(deal_ids, start=1) if i not in got]
        self.held.extend(taken)
        return taken, busy

    def release(self) -> None:
        if self.held:
            keys = [deal_lock_key(self.tenant_id, d) for d in self.held]
            self.redis.eval(_RELEASE, len(keys), *keys, self.token)
            self.held = []

    def renew(self) -> bool:
        """Give the held locks their full life again; False if any was lost meanwhile."""
        if not self.held:
            return True
        keys = [deal_lock_key(self.tenant_id, d) for d in self.held]
        return int(self.redis.eval(_RENEW, len(keys), *keys, self.token, self.ttl_ms)) == len(keys)

    def kept(self) -> AbstractContextManager[None]:
        """The locks held for as long as the work inside takes (renewed at a third of their
        life)."""
        return kept_alive(self.renew, self.ttl_ms / 3000)


FAILURE_RUNS = (
    "dealradar:attempts:{tenant_id}",  # jobs.refresh: deal pulls
    "dealradar:attempts:poll:{tenant_id}",  # jobs.schedule
    "dealradar:attempts:setup:{tenant_id}",  # jobs.install
    "dealradar:attempts:flush:{tenant_id}",  # jobs.writeback
    "dealradar:attempts:crm_actions:auth:{tenant_id}",  # jobs.crm_actions
    "dealradar:users:attempts:{tenant_id}",  # jobs.users
)
"""The runs of failures the jobs count per tenant (jobs.policy.decide_attempt)."""


def auth_run(attempts_key: str) -> str:
    """Where a run's expired-token failures are counted apart from its other failures."""
    return attempts_key + ":auth"


def forget_tenant_failures(redis: Redis, tenant_id: str) -> None:
    """The tenant has a new grant (a reinstall, a new token): the failures counted against the
    old one are forgotten, or the first expired token after it would suspend the tenant again."""
    keys = [run.format(tenant_id=tenant_id) for run in FAILURE_RUNS]
    redis.delete(*keys, *map(auth_run, keys))
