"""The `dealradar` command: one sub-command per module in `connector.commands`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from redis.exceptions import RedisError

from connector.commands import (
    cron_cmd,
    db_cmd,
    evaluate_cmd,
    hubspot_cmd,
    jobs_cmd,
    sandbox_cmd,
    tenants_cmd,
    worker_cmd,
)
from connector.config import ConfigError

COMMANDS = (
    evaluate_cmd, db_cmd, tenants_cmd, worker_cmd, cron_cmd, jobs_cmd, hubspot_cmd, sandbox_cmd,
)
"""Each module adds its sub-command with `register(subparsers)` and handles it in `run(args)`."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dealradar",
        description="Deal Radar: deal alerts and relationship health for your CRM.",
    )
    parser.add_argument("--version", action="version", version=f"dealradar {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


def _version() -> str:
    """The installed package's version (pyproject.toml), for bug reports."""
    try:
        return version("dealradar")
    except PackageNotFoundError:  # run from a source tree never installed
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ConfigError as exc:
        print(f"dealradar {args.command}: {exc}", file=sys.stderr)
        return 2
    except RedisError as exc:
        print(
            f"dealradar {args.command}: Redis failed: {exc}\n"
            "Check that it is running and that REDIS_URL is right.",
            file=sys.stderr,
        )
        return 2
    except BrokenPipeError:
        # The reader went away (`| head`): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
