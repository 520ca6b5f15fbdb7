"""gunicorn's settings for `gunicorn "connector:create_app()"` (read from the working directory):
the hooks that keep /metrics right across workers (connector.metrics) and each worker's garbage
collector settings. Worker settings stay on the command line (the Procfile's web line)."""

import gc
import sys
from typing import Any

from connector.config import Config, ConfigError
from connector.metrics import empty_multiprocess_dir, worker_exited


def on_starting(server: Any) -> None:
    """Before the first worker: a configuration the app cannot start with stops the server with
    its one-line reason (each worker would print its traceback, then gunicorn stop); counters
    start from zero for this server."""
    try:
        Config.from_env().require_public_url()
    except ConfigError as exc:
        sys.exit(f"dealradar: {exc}")
    path = Config.from_env(require_keys=False).metrics_dir
    if path:
        empty_multiprocess_dir(path)


def child_exit(server: Any, worker: Any) -> None:
    worker_exited(Config.from_env(require_keys=False).metrics_dir, worker.pid)


GC_YOUNG_THRESHOLD = 50_000
"""Allocations between two collections of the youngest generation (Python's default: 700)."""


def post_fork(server: Any, worker: Any) -> None:
    """A new worker's garbage collector: the objects the app made at start (modules, the app,
    its clients) are frozen out of every later collection, and the youngest generation is
    collected after GC_YOUNG_THRESHOLD allocations instead of 700. A webhook request allocates
    a few thousand objects that reference counting frees when it ends; at the default, several
    collections a request traverse them (and every other thread's) for no garbage found. Measured
    with bench/webhooks.py: the workers' CPU per request 0.76 to 0.89 ms against 0.82 to
    1.03 ms with the defaults. Cycles still get collected, less often."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 50, 100)
