"""`dealradar jobs failed` lists failed jobs with their reason; `dealradar jobs retry` requeues."""

from __future__ import annotations

import argparse

from redis import Redis
from rq import Queue
from rq.job import Job

from connector import queues
from connector.config import Config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("jobs", help="inspect and retry failed jobs", description=__doc__)
    jobs_sub = p.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)
    failed = jobs_sub.add_parser(
        "failed",
        help="list failed jobs with their reason",
        description="List the jobs that failed on every queue (REDIS_URL): id, queue, function "
        "and arguments, when it ended, and the last line of its error. Requeue them with "
        "`dealradar jobs retry`.",
    )
    failed.set_defaults(run=run_failed)
    retry = jobs_sub.add_parser(
        "retry",
        help="requeue failed jobs",
        description="Put failed jobs back on their queues for a worker to run again: those "
        "named by id (from `dealradar jobs failed`), or all of them. Exits 1 if an id is not "
        "among the failed jobs.",
    )
    retry.add_argument("job_ids", nargs="*", metavar="JOB_ID", help="jobs to retry (default: all)")
    retry.set_defaults(run=run_retry)


def _redis() -> Redis:
    # Only REDIS_URL is read here, and it has a default: no configuration error to report.
    return Redis.from_url(Config.from_env(require_keys=False).redis_url)


def failed_jobs(redis: Redis) -> list[tuple[str, Job]]:
    found = []
    for name in queues.QUEUES:
        registry = Queue(name, connection=redis).failed_job_registry
        for job in Job.fetch_many(registry.get_job_ids(), connection=redis):
            if job is not None:
                found.append((name, job))
    return found


def reason(job: Job) -> str:
    text = (job.latest_result().exc_string if job.latest_result() else None) or job.exc_info or ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no reason recorded)"


def run_failed(args: argparse.Namespace) -> int:
    redis = _redis()
    jobs = failed_jobs(redis)
    if not jobs:
        print("no failed jobs")
        return 0
    for name, job in jobs:
        ended = job.ended_at.isoformat(timespec="seconds") if job.ended_at else "?"
        print(f"{job.id}  {name}  {job.func_name}{tuple(job.args)}  {ended}\n    {reason(job)}")
    print(f"{len(jobs)} failed; 'dealradar jobs retry' requeues them all, or name job ids")
    return 0


def run_retry(args: argparse.Namespace) -> int:
    redis = _redis()
    wanted = set(args.job_ids)
    failed = failed_jobs(redis)
    unknown = wanted - {job.id for _, job in failed}
    for name, job in failed:
        if not wanted or job.id in wanted:
            Queue(name, connection=redis).failed_job_registry.requeue(job.id)
    print(f"requeued {len(wanted - unknown) if wanted else len(failed)} job(s)")
    if unknown:
        print(
            f"not among the failed jobs: {', '.join(sorted(unknown))} (see 'dealradar jobs failed')"
        )
        return 1
    return 0
