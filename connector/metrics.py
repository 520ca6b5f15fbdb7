"""Prometheus metrics of one app: a registry per app (no module globals), counters for what the
web tier accepts and refuses, and gauges read from Redis at scrape time for the queues and the
workers (RQ keeps each worker's job counts and working time there)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker

from connector import queues


class Metrics:
    def __init__(self, redis: Redis) -> None:
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
        self.registry.register(_QueueCollector(redis))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


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
