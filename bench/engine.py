"""Engine throughput: alerts + health per second on one core, against parsing the same JSON.

    .venv/bin/python bench/engine.py [--count 100000] [--seed 7] [--chunk 10000]

Generates realistic bundles (sandbox.bundles: about 40 activities and 5 contacts each), keeps
them as JSON text (a chunk at a time, so memory stays flat), then times three stages per bundle:
`json.loads` alone, building the canonical model from the parsed JSON, and evaluating alerts
and health. Prints deals per second for each, the evaluation's cost relative to the parse, the
peak memory of the process, and the mix of alerts and grades as a realism check.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

# Python puts this script's folder first on the path, where this very file would shadow the
# `engine` package; the project root goes there instead.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from engine.evaluate import Evaluator  # noqa: E402  (after the path fix above)
from engine.model import load_bundle  # noqa: E402
from engine.settings import load_settings  # noqa: E402
from sandbox.bundles import generate  # noqa: E402

NOW = datetime.fromisoformat("2026-11-25T09:00:00+01:00")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="bundles to evaluate")
    parser.add_argument("--seed", type=int, default=7, help="generator seed")
    parser.add_argument("--chunk", type=int, default=10_000, help="bundles held in memory at once")
    parser.add_argument("--timezone", default="Europe/Paris", help="the tenant's timezone")
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as promised
    evaluator = Evaluator(load_settings({"timezone": args.timezone}), NOW)

    t_parse = t_model = t_eval = 0.0
    json_bytes = activities = contacts = 0
    alerts: Counter[str] = Counter()
    grades: Counter[str] = Counter()
    stream = generate(args.count, seed=args.seed, now=NOW)
    done = 0
    while done < args.count:
        n = min(args.chunk, args.count - done)
        texts = [json.dumps(next(stream)) for _ in range(n)]
        json_bytes += sum(len(t) for t in texts)

        # One bundle at a time through the three stages, as a sweep streams them: holding
        # thousands of parsed bundles alive would make the GC walk them over and over.
        for text in texts:
            t0 = time.perf_counter()
            parsed = json.loads(text)
            t1 = time.perf_counter()
            bundle = load_bundle(parsed)
            t2 = time.perf_counter()
            result = evaluator(bundle)
            t3 = time.perf_counter()
            t_parse, t_model, t_eval = t_parse + t1 - t0, t_model + t2 - t1, t_eval + t3 - t2
            activities += len(bundle.activities)
            contacts += len(bundle.contacts)
            alerts.update(a.code for a in result.alerts)
            grades[result.health.grade] += 1
        done += n
        print(f"  {done:,}/{args.count:,} bundles", file=sys.stderr, flush=True)

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    count = args.count
    print(
        f"bundles                   {count:,} (mean {activities / count:.1f} activities, "
        f"{contacts / count:.1f} contacts, {json_bytes / count / 1024:.1f} KiB of JSON)"
    )
    print(
        f"json.loads                {count / t_parse:>10,.0f} deals/s  "
        f"({t_parse / count * 1e6:.1f} us/deal)"
    )
    print(
        f"model from parsed JSON    {count / t_model:>10,.0f} deals/s  "
        f"({t_model / count * 1e6:.1f} us/deal)"
    )
    print(
        f"alerts + health           {count / t_eval:>10,.0f} deals/s  "
        f"({t_eval / count * 1e6:.1f} us/deal)  target >= 20,000"
    )
    print(f"evaluate / json.loads     {t_eval / t_parse:>10.2f}x  target <= 1.00")
    print(f"peak memory (max RSS)     {peak_mb:>10.0f} MB")
    print(
        "alerts per 100 deals      "
        + ", ".join(f"{code} {n * 100 / count:.0f}" for code, n in alerts.most_common())
    )
    print(
        "grades                    "
        + ", ".join(f"{g} {n * 100 / count:.0f}%" for g, n in grades.most_common())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
