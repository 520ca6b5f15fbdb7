"""What a job needs from its process: the store, Redis, the clock and the tunables.

A worker started by `dealradar worker` builds it from the environment on first use; tests and
benchmarks install their own with `install()`. Jobs take ids and plain values, and fetch
everything else from here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from redis import Redis

from connector.config import Config
from connector.notify.config import NotifyConfig
from connector.store.db import Store
from connector.store.secrets import TokenBox
from connector.store.times import utc_now


@dataclass
class Runtime:
    store: Store
    redis: Redis
    clock: Callable[[], datetime] = utc_now
    coalesce_seconds: float = 2.0
    lock_seconds: float = 90.0
    stale_seconds: float = 60.0
    """Inbox events and outbox effects pending this long are put back on the queues."""
    extras: dict[str, object] = field(default_factory=dict)
    box: TokenBox | None = None
    """Opens the tenants' stored CRM tokens (None: no CRM that needs them is served)."""
    crm: Mapping[str, str] = field(default_factory=dict, repr=False)
    """The CRM apps' settings (client ids and secrets, hosts) from Config.crm."""
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    """Where mail goes and which outbound URLs may be called (Config.notify)."""


_current: Runtime | None = None


def install(runtime: Runtime | None) -> None:
    global _current
    _current = runtime


def current() -> Runtime:
    global _current
    if _current is None:
        config = Config.from_env()
        _current = Runtime(
            store=Store(config.database_url),
            redis=Redis.from_url(config.redis_url),
            coalesce_seconds=config.coalesce_seconds,
            lock_seconds=config.lock_seconds,
            stale_seconds=config.stale_seconds,
            box=TokenBox(config.secret_keys) if config.secret_keys else None,
            crm=config.crm,
            notify=config.notify,
        )
    return _current
