"""`dealradar cron`: start the scheduled work: the scheduler tick and the sweeper every minute,
the inbox purge every hour.

RQ's CronScheduler has no lock, so one process at a time may run it: each `dealradar cron`
tries to take a leadership lease in Redis and only the holder schedules; the others wait as
standbys and take over within a lease when the leader dies. The scheduled jobs are idempotent
besides (see jobs.schedule), so even two leaders would not double any work.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import socket
import threading
import uuid

from redis import Redis
from rq.cron import CronScheduler

from connector import queues
from connector.config import Config

log = logging.getLogger(__name__)

LEADER_KEY = "dealradar:cron:leader"
LEASE_SECONDS = 30
"""A leader renews its lease every third of this; a standby takes over when it lapses."""
TICK_SECONDS = 60
PURGE_CRON = "23 * * * *"
"""The inbox purge runs hourly (jobs.purge.run); at a fixed minute, not at start-up."""

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""


_RESIGN = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cron", help="run the scheduler (one leader at a time)", description=__doc__)
    p.add_argument(
        "--interval", type=_seconds, default=TICK_SECONDS, help="seconds between ticks (default 60)"
    )
    p.set_defaults(run=run)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, 1 or more; got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    config = Config.from_env(require_keys=False)  # errors end the command (connector.cli)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run_cron(Redis.from_url(config.redis_url), interval=args.interval)
    return 0


class JobName(str):
    """A job by its dotted name, shaped like the function RQ's CronJob expects (it reads
    `__module__` and `__name__`); Queue.enqueue takes the name itself. This keeps the rule that
    nothing imports `jobs`."""

    def __new__(cls, dotted: str) -> JobName:
        name = super().__new__(cls, dotted)
        name.__module__, _, name.__name__ = dotted.rpartition(".")
        return name


def scheduler(redis: Redis, interval: float) -> CronScheduler:
    cron = CronScheduler(
        connection=redis, name=f"dealradar-cron-{socket.gethostname()}-{os.getpid()}"
    )
    every = max(1, int(interval))
    cron.register(JobName("jobs.sweeper.run"), queue_name=queues.EVENTS, interval=every)
    cron.register(JobName("jobs.schedule.tick"), queue_name=queues.SWEEP, interval=every)
    cron.register(JobName("jobs.purge.run"), queue_name=queues.SWEEP, cron=PURGE_CRON)
    return cron


def run_cron(
    redis: Redis, *, interval: float = TICK_SECONDS, stop: threading.Event | None = None
) -> None:
    """Lead or stand by until `stop` is set (or forever)."""
    stop = stop or threading.Event()
    me = uuid.uuid4().hex
    lease_ms = int(LEASE_SECONDS * 1000)
    cron = scheduler(redis, interval)
    leading = False
    while not stop.is_set():
        if leading:
            leading = bool(redis.eval(_RENEW, 1, LEADER_KEY, me, lease_ms))
            if not leading:
                log.warning("cron: lost the leadership lease; standing by")
        else:
            leading = bool(redis.set(LEADER_KEY, me, nx=True, px=lease_ms))
            if leading:
                log.info("cron: leading; scheduling every %.0f s", interval)
        if leading:
            for job in cron.enqueue_jobs():
                log.info("cron: enqueued %s", job.func_name if hasattr(job, "func_name") else job)
        stop.wait(min(LEASE_SECONDS / 3, max(0.2, interval / 2)))
    if leading:
        redis.eval(_RESIGN, 1, LEADER_KEY, me)
