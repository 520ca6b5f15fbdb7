"""`dealradar worker`: an RQ worker on Deal Radar's queues, live work first.

It runs RQ's scheduler too (delayed retries and coalesced refreshes need one; RQ lets only one
of several workers run it at a time). The heartbeat and maintenance intervals are tightened from
RQ's defaults so that a job whose worker died is noticed in about a minute and a half rather
than a quarter of an hour; the sweeper re-requests the work anyway.
"""

from __future__ import annotations

import argparse
import logging

from redis import Redis
from rq import Queue, Worker

from connector import queues
from connector.config import Config

WORKER_TTL = 35
"""Seconds without a heartbeat after which a worker counts as dead."""
JOB_MONITORING_INTERVAL = 10
MAINTENANCE_INTERVAL = 60
COMMAND_WAIT = 1.0
"""Seconds the worker's command-channel thread waits per read (RQ's: 60)."""


class DealRadarWorker(Worker):
    """RQ's worker, its command channel read in COMMAND_WAIT-second waits. RQ waits 60 s a
    read, and redis-py's PubSubWorkerThread.stop() waits for the read under way to end: a
    stop that came between two reads (the reply to RQ's own UNSUBSCRIBE woke the thread just
    before) held a worker told to stop (Ctrl-C, a deploy) for up to a minute."""

    def subscribe(self) -> None:
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=COMMAND_WAIT, daemon=True,
            exception_handler=self._pubsub_exception_handler,
        )  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "worker",
        help="run a worker on the job queues",
        description=__doc__.split("\n\n")[0]
        + f" Queues, in the order served: {', '.join(queues.QUEUES)}.",
    )
    p.add_argument("--queues", nargs="+", choices=queues.QUEUES, help="serve only these queues")
    p.add_argument("--burst", action="store_true", help="stop when the queues are empty")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = Config.from_env()  # a ConfigError ends the command with its message (connector.cli)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    redis = Redis.from_url(config.redis_url)
    served = [Queue(name, connection=redis) for name in (args.queues or queues.QUEUES)]
    worker = DealRadarWorker(
        served,
        connection=redis,
        worker_ttl=WORKER_TTL,
        job_monitoring_interval=JOB_MONITORING_INTERVAL,
        maintenance_interval=MAINTENANCE_INTERVAL,
    )
    worker.work(burst=args.burst, with_scheduler=True)
    return 0
