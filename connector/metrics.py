"""Prometheus metrics of one app: a registry per app (no module globals), counters for what the
web tier accepts and refuses, and gauges read from Redis at scrape time for the queues and the
workers (RQ keeps each worker's job counts and working time there).

Under gunicorn every worker is a process of its own, and a scrape reaches one of them: each
would show only its own counts. With PROMETHEUS_MULTIPROC_DIR set (Config.metrics_dir),
prometheus_client keeps every counter in a memory-mapped file per process in that directory,
and a scrape adds up the files of every worker, those that have exited included, so the totals
never go down when a worker restarts. The directory is emptied when gunicorn starts
(gunicorn.conf.py). Counters stay in the process, not in Redis: an increment costs a memory
write, not a round trip on every request, and refusals are still counted while Redis is down.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, generate_latest, multiprocess, values
from prometheus_client.core import GaugeMetricFamily
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker

from connector import queues
from connector.config import ConfigError


class Metrics:
    def __init__(self, redis: Redis, multiprocess_dir: str = "") -> None:
        if multiprocess_dir and not multiprocess_active():
            raise ConfigError(
                "PROMETHEUS_MULTIPROC_DIR must be set in the environment of the process before "
                "it starts (prometheus_client reads it when imported)"
            )
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        self.accepted = Counter(
            "dealradar_webhooks_accepted_total",
            "Webhook requests accepted, by source",
            ["source"],
            registry=self.registry,
        )
        self.refused = Counter(
            "dealradar_webhooks_refused_total",
            "Webhook requests refused, by source and reason",
            ["source", "reason"],
            registry=self.registry,
        )
        self.queued = Counter(
            "dealradar_events_queued_total",
            "CRM events committed to the inbox, by source and whether Redis took them",
            ["source", "queued"],
            registry=self.registry,
        )
        self.queue_collector = _QueueCollector(redis)
        self.registry.register(self.queue_collector)
        self._children: dict[tuple[Counter, tuple[str, ...]], Counter] = {}

    def count(self, counter: Counter, *labels: str, amount: float = 1) -> None:
        """Add to `counter`'s series for these labels, found once per process: `labels()`
        costs a lock and a lookup on every call, and webhooks count on every request."""
        child = self._children.get((counter, labels))
        if child is None:
            child = self._children.setdefault((counter, labels), counter.labels(*labels))
        child.inc(amount)

    def exposition(self) -> bytes:
        if not self.multiprocess_dir:
            return generate_latest(self.registry)
        every_worker = CollectorRegistry()
        multiprocess.MultiProcessCollector(every_worker, path=self.multiprocess_dir)
        every_worker.register(self.queue_collector)
        return generate_latest(every_worker)


def multiprocess_active() -> bool:
    """Whether prometheus_client keeps this process's values in PROMETHEUS_MULTIPROC_DIR."""
    return values.ValueClass is not values.MutexValue


def empty_multiprocess_dir(path: str) -> None:
    """Start a server's counters from zero: remove the files of a previous run, keep the
    directory (gunicorn's on_starting hook, before any worker exists)."""
    folder = Path(path)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def worker_exited(path: str, pid: int) -> None:
    """A worker is gone: its live gauges no longer count (its counters do, and stay)."""
    if path:
        multiprocess.mark_process_dead(pid, path)


class _QueueCollector:
    """Queue depths and worker totals, read when Prometheus scrapes."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def collect(self):  # type: ignore[no-untyped-def]  (prometheus_client's collector protocol)
        depth = GaugeMetricFamily(
            "dealradar_queue_depth", "Jobs waiting, by queue", labels=["queue"]
        )
        failed = GaugeMetricFamily(
            "dealradar_jobs_failed", "Jobs in the failed registry, by queue", labels=["queue"]
        )
        done = GaugeMetricFamily("dealradar_jobs_succeeded", "Jobs completed by live workers")
        broken = GaugeMetricFamily(
            "dealradar_jobs_failed_by_workers", "Jobs failed by live workers"
        )
        seconds = GaugeMetricFamily(
            "dealradar_job_seconds", "Seconds live workers spent running jobs"
        )
        try:
            for name in queues.QUEUES:
                q = Queue(name, connection=self.redis)
                depth.add_metric([name], q.count)
                failed.add_metric([name], q.failed_job_registry.count)
            workers = Worker.all(connection=self.redis)
            done.add_metric([], sum(w.successful_job_count for w in workers))
            broken.add_metric([], sum(w.failed_job_count for w in workers))
            seconds.add_metric([], sum(w.total_working_time for w in workers))
        except RedisError:
            return  # /healthz says Redis is down; metrics just go quiet
        yield from (depth, failed, done, broken, seconds)
