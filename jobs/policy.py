"""What to do about each CRM error, in one table, and how long to back off.

retry: put the work back and try again after a jittered exponential backoff (honouring the
CRM's Retry-After); suspend: record the reason on the tenant and stop until an admin acts;
deleted: the record is gone, forget it; fail: a bug or bad data, recorded and not retried.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from adapters import errors
from connector import queues

BACKOFF_BASE = 2.0
"""Seconds before the first retry."""
BACKOFF_CAP = 600.0
"""Never wait longer between two tries: a CRM outage is retried for as long as it lasts."""
AUTH_RETRIES = 3
"""An expired token that refreshing did not cure, this many times, means the install is broken."""
ATTEMPTS_TTL = 24 * 3600
"""A run of failures is forgotten this long after its last attempt."""


@dataclass(frozen=True)
class Decision:
    action: str  # retry | suspend | deleted | fail
    reason: str
    attempt: int = 1
    delay: float = 0.0
    """Seconds to wait before the retry (retry only)."""


POLICY: dict[type[errors.CrmError], str] = {
    errors.RateLimited: "retry",
    errors.Transient: "retry",
    errors.AuthExpired: "retry",
    errors.NotFound: "deleted",
    errors.PermissionDenied: "suspend",
    errors.InvalidRequest: "fail",
}


def decide(error: errors.CrmError, attempt: int) -> Decision:
    action = next((a for cls, a in POLICY.items() if isinstance(error, cls)), "fail")
    if isinstance(error, errors.AuthExpired) and attempt >= AUTH_RETRIES:
        return Decision("suspend", f"the CRM keeps refusing our token ({error}); reinstall the app")
    return Decision(action, str(error) or type(error).__name__)


def backoff(
    attempt: int,
    retry_after: float | None = None,
    rng: random.Random | None = None,
    *,
    base: float = BACKOFF_BASE,
    cap: float = BACKOFF_CAP,
) -> float:
    """Seconds to wait before try number `attempt + 1` (attempt counts from 1); `base` and
    `cap` default to the CRM calls' (outbound hooks and notifications back off more slowly)."""
    rng = rng or random
    ceiling = min(cap, base * 2 ** max(0, min(attempt - 1, 60)))
    delay = ceiling * rng.uniform(0.5, 1.0)  # jitter: tenants hit by one outage spread out
    return max(delay, retry_after or 0.0)


def decide_attempt(redis: Any, attempts_key: str, error: errors.CrmError) -> Decision:
    """Count this failure in the run kept under `attempts_key` (shared by every worker, reset
    by the caller's next success with `forget_attempts`) and decide, with the backoff for a
    retry. Expired tokens are also counted apart: only AUTH_RETRIES of them suspend the tenant,
    whatever other errors (an outage) came between."""
    attempt = _count(redis, attempts_key)
    if isinstance(error, errors.AuthExpired):
        decision = decide(error, _count(redis, _auth_key(attempts_key)))
    else:
        decision = decide(error, attempt)
    if decision.action != "retry":
        return Decision(decision.action, decision.reason, attempt)
    retry_after = error.retry_after if isinstance(error, errors.RateLimited) else None
    return Decision("retry", decision.reason, attempt, backoff(attempt, retry_after))


def forget_attempts(redis: Any, attempts_key: str) -> None:
    """The work succeeded: its next failure starts a new run."""
    redis.delete(attempts_key, _auth_key(attempts_key))


def _count(redis: Any, key: str) -> int:
    attempt = int(redis.incr(key))
    redis.expire(key, ATTEMPTS_TTL)
    return attempt


def _auth_key(attempts_key: str) -> str:
    return queues.auth_run(attempts_key)
