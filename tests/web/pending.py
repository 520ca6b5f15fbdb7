"""Reading a tenant's pending deals after a webhook: the web app requests their refresh a moment
after answering (connector.refresh_requests), so a test waits for them, a few seconds at most."""

from __future__ import annotations

import time

from redis import Redis

from connector import queues

PATIENCE = 5.0
"""Seconds a test waits for the refresh requests; they are sent within about 50 ms."""


def pending_deals(redis: Redis, tenant_id: str, expected: set[str]) -> set[str]:
    """The tenant's pending deals as soon as they are `expected`, else as they are after
    PATIENCE seconds (for the test's assertion to show)."""
    deadline = time.monotonic() + PATIENCE
    while True:
        found = {m.decode() for m in redis.smembers(queues.pending_key(tenant_id))}
        if found == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.01)
