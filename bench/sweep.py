"""Daily sweep throughput and memory: one tenant's open deals re-evaluated by one RQ worker.

    .venv/bin/python bench/sweep.py [--deals 100000] [--database-url URL] [--redis-url URL]
                                    [--seed 7] [--days 1] [--analyze] [--keep] [--profile FILE]

What is measured, and how:

1. Setup (not measured): a fresh database (a SQLite file in a temporary folder, or with a
   PostgreSQL URL a new schema `bench_<random>` reached through `?options=-csearch_path%3D...`
   and dropped at the end, as tests/conftest.py does), migrated with
   connector.store.migrate.upgrade; a tenant (crm "test", Europe/Paris) made with create_tenant;
   and N deals from sandbox.bundles.generate (about 40 activities and 5 contacts each), all
   forced to status "open" so that every one is swept, converted with engine.model.load_bundle
   and saved with connector.store.snapshots.save_bundles, ~1000 deals per transaction.
2. The sweep (measured): this same script is started again as a child process with
   `--sweep-only`, so the parent's seeding memory cannot pollute the figure. The child installs a
   jobs.runtime.Runtime (the store, Redis, a clock fixed the day after the generated data, at
   06:00 in Paris, the default sweep hour), calls `jobs.sweep.start(tenant, day)` and then runs an
   rq SimpleWorker in burst mode on the "sweep" queue: the real worker code path, with every
   chained `jobs.sweep.chunk` job run in-process. The wall time runs from start() until the
   worker has drained the queue, when the SweepRun row must read "done" with every deal counted.
   Each chunk job's time and the RSS after it are kept too: a sweep whose chunks get slower as
   it goes (a query whose cost grows with the rows written so far) or whose RSS keeps climbing
   shows it there, before it shows at a larger N. The child reports its own peak RSS, and its
   RSS just before the sweep, so the growth during the sweep is visible apart from the cost of
   the imports. The peak is the kernel's high-water mark of the child's address space (VmHWM
   in /proc/self/status), not ru_maxrss: Linux carries ru_maxrss over fork and exec, so a
   child's ru_maxrss starts at its parent's peak, which here is the seeding's. (Elsewhere than
   Linux, ru_maxrss is reported, with that caveat.)
3. The report: deals, activities, dialect, seed time, sweep time, deals/s, the sweeping process's
   peak RSS, and what the sweep proposed in the outbox (write-backs and events, counted by kind
   in a tenant session, as effects and as rows: a row may carry a batch of them), against the
   targets: 100,000 deals in under 60 s on one worker, peak memory under 500 MB. The follow-up
   jobs the sweep queues (write-back flush, event dispatch) are not run: they talk to the CRM
   and are not part of the sweep.

The first sweep of a tenant is the heaviest (every alert opens an episode, every deal gets a
write-back); `--days N` sweeps N consecutive days, each in its own child process and reported on
its own, so day 2 shows the steady daily cost. On PostgreSQL the report says whether autovacuum
is on: where it is off (as on some test servers) no table is ever analyzed and the planner keeps
an empty table's statistics for tables the sweep fills. `--analyze` runs ANALYZE on the
benchmark's tables while seeding (every tenth of it) and between sweeps, outside the measured
time, as autovacuum would have done on a server where it runs.

`--days 0 --keep` seeds only and prints the `--sweep-only` command that sweeps the kept
database, for a profiler or a statement timer of your own.

With `--profile FILE` the child runs the sweep (the last one, with --days) under cProfile,
saves the statistics to FILE and the parent prints the top functions by own time and by
cumulative time (profiling slows the sweep down: use the figures for proportions, not for the
targets).

Run on demand only, never from the tests: it takes minutes at the default size.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

# Python puts this script's folder first on the path, where bench/engine.py would shadow the
# `engine` package; the project root goes there instead.
ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

from redis import Redis  # noqa: E402  (after the path fix above)
from rq import Queue, SimpleWorker  # noqa: E402
from rq.job import Job  # noqa: E402
from sqlalchemy import select, text  # noqa: E402

from bench.common import fresh_schema, git_revision  # noqa: E402
from connector import queues  # noqa: E402
from connector.embedded import RedisProcess, start_redis  # noqa: E402
from connector.store.db import Store  # noqa: E402
from connector.store.migrate import upgrade  # noqa: E402
from connector.store.models import Base, OutboxEffect, SweepRun  # noqa: E402
from connector.store.snapshots import save_bundles  # noqa: E402
from connector.store.tenants import create_tenant  # noqa: E402
from engine.model import load_bundle  # noqa: E402
from jobs import runtime, sweep  # noqa: E402
from sandbox.bundles import generate  # noqa: E402

GENERATED_AT = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
"""The generator's "now": the snapshot is as of this instant."""
SWEEP_AT = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
"""The first sweep's fixed clock: the next day, 06:00 in Paris (the default sweep hour); with
--days, each further sweep is a day later."""
TIMEZONE = "Europe/Paris"
SEED_BATCH = 1000
"""Deals saved per transaction while seeding."""
TARGET_SECONDS_PER_100K = 60.0
TARGET_PEAK_MB = 500.0
PROFILE_LINES = 25
PRODUCT_PACKAGES = ("engine", "connector", "jobs", "adapters", "sandbox")
"""Whose sources make the code fingerprint (see code_fingerprint)."""


def _proc_status_mb(field: str) -> float | None:
    """A memory figure of this process from /proc/self/status (Linux), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # in kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _rss_mb() -> float:
    """The resident set size of this process now, in MB (0 where /proc is missing)."""
    return _proc_status_mb("VmRSS") or 0.0


def _peak_rss_mb() -> float:
    """The peak resident set size of this process, in MB.

    VmHWM belongs to the process's own address space, so it starts afresh at exec; ru_maxrss
    would start at the parent's peak (ru_maxrss is in kilobytes on Linux, bytes on macOS).
    """
    peak = _proc_status_mb("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024


def code_fingerprint() -> str:
    """A digest of the product's Python sources as they are on disk now.

    The parent seeds with the code it imported at start, the child sweeps with the code on disk
    when it starts: if someone edits the tree in between, the two disagree (a changed storage
    format fails the sweep, a changed hot path gives figures for neither version). Parent and
    child compare fingerprints, and the report says which code was measured.
    """
    digest = hashlib.sha256()
    for package in PRODUCT_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


# --- the sweeping process -----------------------------------------------------------------------


class TimedWorker(SimpleWorker):
    """RQ's in-process worker, noting each chunk job's wall time and the RSS after it (the
    sweep's other job, its read of the CRM's users, is timed with the sweep, not listed)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.jobs: list[tuple[float, float]] = []

    def perform_job(self, job: Job, queue: Queue) -> bool:
        t0 = time.perf_counter()
        try:
            return super().perform_job(job, queue)
        finally:
            if job.func_name == "jobs.sweep.chunk":
                self.jobs.append((time.perf_counter() - t0, _rss_mb()))


def sweep_only(args: argparse.Namespace) -> int:
    """Child mode: run one tenant's sweep through an RQ SimpleWorker; print a JSON result line."""
    code = code_fingerprint()
    now = datetime.fromisoformat(args.now)
    day = now.astimezone(ZoneInfo(TIMEZONE)).date()
    store = Store(args.database_url)
    redis = Redis.from_url(args.redis_url)
    sweep_queue = Queue(queues.SWEEP, connection=redis)
    runtime.install(runtime.Runtime(store=store, redis=redis, clock=lambda: now))
    # Warm the connections so that neither first connect counts as sweep time.
    with store.global_session() as s:
        s.execute(text("SELECT 1"))
    redis.ping()
    rss_before = _rss_mb()
    worker = TimedWorker([sweep_queue], connection=redis)

    profiler = cProfile.Profile() if args.profile else None
    t0 = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    started = sweep.start(args.tenant_id, day.isoformat())
    worker.work(burst=True, logging_level="WARNING")
    if profiler is not None:
        profiler.disable()
    seconds = time.perf_counter() - t0

    with store.tenant(args.tenant_id) as s:
        run = s.get(SweepRun, (args.tenant_id, day))
        status, done, total = (run.status, run.done, run.total) if run else ("missing", 0, 0)
    if profiler is not None:
        profiler.dump_stats(args.profile)
    failed_ids = sweep_queue.failed_job_registry.get_job_ids()
    for job in Job.fetch_many(failed_ids, connection=redis):
        if job is not None:  # what failed, where the parent's report can say it
            print(
                f"failed job {job.id}: {job.func_name}{job.args}\n{job.exc_info}", file=sys.stderr
            )
    store.dispose()
    result = {
        "code": code,
        "day": day.isoformat(),
        "started": started,
        "seconds": seconds,
        "status": status,
        "done": done,
        "total": total,
        "failed_jobs": len(failed_ids),
        "rss_before_mb": rss_before,
        "peak_mb": _peak_rss_mb(),
        "jobs": worker.jobs,
        "queued": {name: Queue(name, connection=redis).count for name in queues.QUEUES},
    }
    print(json.dumps(result))
    return 0


def run_sweep_child(
    database_url: str, redis_url: str, tenant_id: str, now: datetime, profile: str | None
) -> dict[str, Any]:
    """Run one sweep in a new process (this script with --sweep-only); its JSON result."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--sweep-only",
        "--database-url", database_url,
        "--redis-url", redis_url,
        "--tenant-id", tenant_id,
        "--now", now.isoformat(),
    ]  # fmt: skip
    if profile:
        command += ["--profile", profile]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the sweeping process failed with status {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- setup: database, Redis, seed ---------------------------------------------------------------


@contextmanager
def fresh_database(url: str | None, keep: bool) -> Iterator[str]:
    """A new empty database: a SQLite file in a temporary folder, or a new PostgreSQL schema."""
    if url is None:
        folder = tempfile.mkdtemp(prefix="dealradar-bench-")
        try:
            yield f"sqlite:///{Path(folder) / 'bench.db'}"
        finally:
            if keep:
                print(f"kept the database in {folder}")
            else:
                shutil.rmtree(folder, ignore_errors=True)
        return
    if not url.startswith(("postgres://", "postgresql")):
        yield url  # any other database, as given: the caller owns it
        return
    with fresh_schema(url, keep) as schema_url:
        yield schema_url


@contextmanager
def redis_server(url: str | None) -> Iterator[str]:
    """The given Redis, or a private one started for the run and stopped after it."""
    if url:
        yield url
        return
    started: RedisProcess = start_redis()
    try:
        yield started.url
    finally:
        started.stop()


def _open(bundle: dict[str, Any]) -> dict[str, Any]:
    bundle["deal"]["status"] = "open"
    return bundle


def seed(
    store: Store, tenant_id: str, deals: int, seed_value: int, analyzing: bool
) -> tuple[int, float]:
    """Save `deals` open deals in batches; returns (activities saved, seconds).

    With `analyzing`, the tables are analyzed after the first batch and at every tenth, as
    autovacuum would: on tables never analyzed, PostgreSQL may plan save_bundles' deletes of a
    batch's links as a scan of all the tenant's links, and the seeding turns quadratic.
    """
    stream = generate(deals, seed=seed_value, now=GENERATED_AT)
    saved = activities = 0
    step = max(1, deals // 10)
    next_report = step
    t0 = time.perf_counter()
    while saved < deals:
        bundles = [load_bundle(_open(b)) for b in islice(stream, SEED_BATCH)]
        with store.tenant(tenant_id) as s:
            save_bundles(s, tenant_id, bundles, GENERATED_AT)
        if analyzing and saved == 0:
            analyze(store)
        saved += len(bundles)
        activities += sum(len(b.activities) for b in bundles)
        if saved >= next_report or saved == deals:
            if analyzing:
                analyze(store)
            elapsed = time.perf_counter() - t0
            print(f"  seeded {saved:>9,}/{deals:,} deals  {elapsed:7.1f} s", flush=True)
            next_report = (saved // step + 1) * step
    return activities, time.perf_counter() - t0


def _effects_in(payload: Any) -> int:
    """How many effects an outbox row carries: one, or a batch's list of deals or events."""
    if isinstance(payload, dict):
        for field in ("deal_ids", "events"):
            if isinstance(payload.get(field), list):
                return len(payload[field])
    return 1


def outbox_counts(store: Store, tenant_id: str) -> dict[str, tuple[int, int]]:
    """The tenant's outbox by kind: (rows, effects), read in a tenant session.

    A row is one effect, or a batch of them (a list of deal ids to write back, of events):
    both are counted, so that the figures compare whichever way the pipeline groups them.
    """
    rows: Counter[str] = Counter()
    effects: Counter[str] = Counter()
    query = select(OutboxEffect.kind, OutboxEffect.payload).execution_options(yield_per=2000)
    with store.tenant(tenant_id) as s:
        for kind, payload in s.execute(query):
            rows[kind] += 1
            effects[kind] += _effects_in(payload)
    return {kind: (rows[kind], effects[kind]) for kind in rows}


def analyze(store: Store) -> float:
    """ANALYZE the benchmark's tables (only those: a PostgreSQL server may hold other schemas);
    returns the seconds it took."""
    t0 = time.perf_counter()
    with store.engine.connect() as conn:
        if store.dialect == "postgresql":
            for table in Base.metadata.sorted_tables:  # found through the URL's search_path
                conn.execute(text(f'ANALYZE "{table.name}"'))
        else:
            conn.execute(text("ANALYZE"))  # the SQLite file is the benchmark's own
        conn.commit()
    return time.perf_counter() - t0


def statistics_note(store: Store, analyzing: bool) -> str:
    """How the planner's statistics are kept up to date during the run, for the report."""
    done_here = "ANALYZE while seeding and between sweeps" if analyzing else "no ANALYZE here"
    if store.dialect != "postgresql":
        return done_here
    with store.engine.connect() as conn:
        autovacuum = conn.execute(text("SHOW autovacuum")).scalar()
    return f"autovacuum {autovacuum}, {done_here}"


def print_profile(path: str) -> None:
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(path, stream=out)
        stats.strip_dirs().sort_stats(order).print_stats(PROFILE_LINES)
        body = out.getvalue()
        # Keep from the column header on: the preamble repeats the file name and totals.
        start = body.find("   ncalls")
        print(f"\n--- profile of the sweeping process, by {order} ---")
        print(body[start:] if start >= 0 else body)


# --- the benchmark ------------------------------------------------------------------------------


def bench(args: argparse.Namespace) -> int:
    code, revision = code_fingerprint(), git_revision(PRODUCT_PACKAGES)
    sweeps: list[dict[str, Any]] = []
    with (
        redis_server(args.redis_url) as redis_url,
        fresh_database(args.database_url, args.keep) as url,
    ):
        redis = Redis.from_url(redis_url)
        if Queue(queues.SWEEP, connection=redis).count:
            raise SystemExit(f"the {queues.SWEEP!r} queue at {redis_url} is not empty")
        upgrade(url)
        store = Store(url)
        try:
            tenant, _key = create_tenant(
                store,
                crm="test",
                account_id=f"bench-{uuid.uuid4().hex[:8]}",
                name="sweep benchmark",
                timezone=TIMEZONE,
                now=GENERATED_AT,
            )
            print(f"seeding {args.deals:,} open deals on {store.dialect} (seed {args.seed})")
            activities, seed_seconds = seed(store, tenant.id, args.deals, args.seed, args.analyze)
            stats = statistics_note(store, args.analyze)
            if not args.days:
                print(
                    "seeded only; sweep it (with a Redis of your own) with:\n"
                    f"  {sys.executable} {Path(__file__).resolve()} --sweep-only "
                    f"--database-url '{url}' --redis-url redis://... --tenant-id {tenant.id} "
                    f"--now {SWEEP_AT.isoformat()}"
                )
            for k in range(args.days):
                now = SWEEP_AT + timedelta(days=k)
                before = outbox_counts(store, tenant.id)
                print(f"sweeping tenant {tenant.id} at {now.isoformat()} in a child process")
                profile = args.profile if k + 1 == args.days else None  # the last sweep
                result = run_sweep_child(url, redis_url, tenant.id, now, profile)
                after = outbox_counts(store, tenant.id)
                result["proposed"] = {
                    kind: (rows - before.get(kind, (0, 0))[0], n - before.get(kind, (0, 0))[1])
                    for kind, (rows, n) in after.items()
                }
                sweeps.append(result)
                if args.analyze and k + 1 < args.days:
                    print(f"  ANALYZE: {analyze(store):.1f} s")
            dialect = store.dialect
        finally:
            store.dispose()
        redis.close()
    print()
    print(f"deals                     {args.deals:,} (all open)")
    print(f"activities                {activities:,} ({activities / args.deals:.1f} per deal)")
    print(f"database                  {dialect} (statistics: {stats})")
    print(f"code                      {revision or 'no git'} (sources {code})")
    print(f"seed time                 {seed_seconds:10.1f} s  (not measured)")
    invalid = 0
    for k, result in enumerate(sweeps):
        problems = problems_of(result, code, args.deals)
        invalid += bool(problems)
        report(args, k, result, problems)
    if args.profile:
        print("\n(profiled: cProfile slows the sweep down, the timings are not the product's)")
        print_profile(args.profile)
    return 1 if invalid else 0


def problems_of(result: dict[str, Any], code: str, deals: int) -> list[str]:
    """Why a sweep's figures mean nothing, if they do not."""
    problems = []
    if result["code"] != code:
        problems.append(
            f"the product code changed during the run (fingerprint {code} when seeding, "
            f"{result['code']} when sweeping): the figures belong to neither version"
        )
    if not (result["status"] == "done" and result["done"] == result["total"] == deals):
        problems.append(
            f"the sweep did not complete: {result['status']} "
            f"{result['done']:,}/{result['total']:,} of {deals:,} deals"
        )
    if result["failed_jobs"]:
        problems.append(f"{result['failed_jobs']} sweep job(s) failed (tracebacks above)")
    return problems


def report(args: argparse.Namespace, k: int, result: dict[str, Any], problems: list[str]) -> None:
    deals, seconds = args.deals, result["seconds"]
    target_seconds = TARGET_SECONDS_PER_100K * deals / 100_000
    peak = result["peak_mb"]
    speed_ok = "OK" if seconds < target_seconds else "MISSED"
    memory_ok = "OK" if peak < TARGET_PEAK_MB else "MISSED"
    if problems:  # a sweep that did not run as it should meets no target
        speed_ok = memory_ok = "INVALID RUN"
    proposed = result["proposed"]
    writebacks, writeback_rows = proposed.get("writeback", (0, 0))[::-1]
    events, event_rows = proposed.get("event", (0, 0))[::-1]
    others = ", ".join(f"{kind} {n:,}" for kind, (_, n) in sorted(proposed.items()) if kind not in (
        "writeback", "event")) or "none"  # fmt: skip
    queued = ", ".join(f"{q} {n}" for q, n in result["queued"].items() if n) or "none"
    # Every job listed is one chunk of the sweep, the first the chain's head.
    times = [t for t, _ in result["jobs"]]
    rss = [r for _, r in result["jobs"]]
    which = "the first: every alert opens an episode" if k == 0 else "a following day"
    print(f"\nsweep of {result['day']} (sweep {k + 1}, {which})")
    print(
        f"  sweep time              {seconds:10.1f} s  target < {target_seconds:.0f} s "
        f"(60 s per 100,000 deals)  {speed_ok}"
    )
    print(
        f"  deals/s                 {deals / seconds:10,.0f}    target > 1,667  "
        f"({seconds / deals * 1e3:.2f} ms/deal)"
    )
    if times:
        ordered = sorted(times)
        print(
            f"  chunk jobs              {len(times):10}    of {sweep.CHUNK:,} deals: "
            f"first {times[0]:.2f} s, median {ordered[len(ordered) // 2]:.2f} s, "
            f"slowest {ordered[-1]:.2f} s (job {times.index(ordered[-1]) + 1})"
        )
    print(
        f"  peak RSS (sweep process){peak:10.0f} MB  target < {TARGET_PEAK_MB:.0f} MB  {memory_ok}"
    )
    if rss:
        print(
            f"  RSS                     {result['rss_before_mb']:10.0f} MB  before the sweep; "
            f"after chunks: first {rss[0]:.0f}, middle {rss[len(rss) // 2]:.0f}, "
            f"last {rss[-1]:.0f} MB"
        )
    print(
        f"  sweep run               {result['status']} {result['done']:,}/{result['total']:,}, "
        f"failed jobs {result['failed_jobs']}"
    )
    print(f"  write-backs proposed    {writebacks:10,}  (in {writeback_rows:,} new outbox rows)")
    print(
        f"  events proposed         {events:10,}  (in {event_rows:,} new outbox rows; "
        f"other kinds: {others})"
    )
    print(f"  follow-up jobs queued   {queued}  (not run: they talk to the CRM)")
    for problem in problems:
        print(f"  INVALID RUN: {problem}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Targets: 100,000 deals swept in under 60 s on one worker, peak RSS under 500 MB.",
    )
    parser.add_argument("--deals", type=int, default=100_000, help="open deals to seed and sweep")
    parser.add_argument(
        "--database-url",
        help="default: a fresh SQLite file in a temporary folder; a postgresql:// URL gets a "
        "fresh schema bench_<random>, dropped at the end",
    )
    parser.add_argument(
        "--redis-url",
        help="default: a private redis-server started for the run (its 'sweep' queue must be "
        "empty)",
    )
    parser.add_argument("--seed", type=int, default=7, help="generator seed")
    parser.add_argument(
        "--days",
        type=int,
        default=1,
        help="daily sweeps to run, each a day after the last (0 with --keep: seed only, and "
        "print the command that sweeps the kept database)",
    )
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="ANALYZE the benchmark's tables while seeding and between sweeps (not measured), "
        "as autovacuum would",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database (file or schema)")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="run the (last) sweep under cProfile, save the stats to FILE and print the top",
    )
    # Child mode: the sweep alone, in a process of its own, against an already seeded database.
    parser.add_argument("--sweep-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tenant-id", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sweep_only:
        if not (args.database_url and args.redis_url and args.tenant_id and args.now):
            parser.error("--sweep-only needs --database-url, --redis-url, --tenant-id and --now")
        return sweep_only(args)
    if args.deals < 1 or args.days < 0:
        parser.error("--deals must be at least 1 and --days at least 0")
    if args.days == 0 and not args.keep:
        parser.error("--days 0 seeds and sweeps nothing: use it with --keep")
    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
