"""The reference Deal Radar writes into every task and note it creates in a CRM. Pure.

The marker does two jobs: a pull leaves records carrying it out of a deal's activities (our own
task is not the rep's activity), and an action retried after a lost answer looks for its own
reference before creating anything, so a retry never makes a second task.
"""

from __future__ import annotations

import hashlib

OWN_MARKER = "Deal Radar ref: "


def ref_token(key: str) -> str:
    """The short reference for an outbox key: stable across retries, opaque to the rep."""
    if not key:
        raise ValueError("an action needs its outbox key, so that a retry creates nothing twice")
    return "dr" + hashlib.sha256(key.encode()).hexdigest()[:24]


def marked(body: str, key: str) -> str:
    """`body` with the reference for `key` on a line of its own after a blank line."""
    return f"{body}\n\n{OWN_MARKER}{ref_token(key)}"
