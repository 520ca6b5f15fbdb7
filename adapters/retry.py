"""How long a CRM client waits before trying one call again: shared by every adapter's client.

The jobs' own retries (after a client gives up) follow jobs.policy; this is only the short
backoff between the tries of a single call.
"""

from __future__ import annotations

import random

from adapters.errors import CrmError

BACKOFF_BASE = 0.5
"""Seconds before the first retry of a call; doubled each time, with full jitter."""
BACKOFF_CAP = 10.0
"""The longest wait between two tries of one call."""


def backoff(attempt: int, error: CrmError) -> float:
    """Seconds before try `attempt + 1`: the CRM's hint (capped) if it gave one, else full
    jitter over an exponential ceiling."""
    hinted = getattr(error, "retry_after", None)
    if hinted:
        return min(float(hinted), BACKOFF_CAP) + random.uniform(0, BACKOFF_BASE)
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))
