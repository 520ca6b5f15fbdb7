"""gunicorn's settings for `gunicorn "connector:create_app()"` (read from the working directory):
only the hooks that keep /metrics right across workers (connector.metrics). Worker settings
stay on the command line (the Procfile's web line)."""

from typing import Any

from connector.config import Config
from connector.metrics import empty_multiprocess_dir, worker_exited


def on_starting(server: Any) -> None:
    """Before the first worker: counters start from zero for this server."""
    path = Config.from_env(require_keys=False).metrics_dir
    if path:
        empty_multiprocess_dir(path)


def child_exit(server: Any, worker: Any) -> None:
    worker_exited(Config.from_env(require_keys=False).metrics_dir, worker.pid)
