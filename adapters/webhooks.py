"""The vocabulary shared by every CRM's webhook half: two errors, a hint, a parsed event.

A webhook half is pure: it takes the raw bytes, the headers, the secret and `now` as parameters,
and does no I/O. `signature.py` raises `SignatureError` (the handler answers 401), `events.py`
raises `MalformedBody` (400) and otherwise returns `ParsedEvent`s, some of them ignored (200,
logged), the rest handed to the jobs (202) as hints of what changed in the CRM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HINT_KINDS = frozenset({"deal", "contact", "activity", "company"})
"""What a CRM event can say changed; the jobs decide which deals to refresh from it."""


class WebhookError(Exception):
    """Base of the webhook errors: `reason` is a short machine word, safe to log and to count."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SignatureError(WebhookError):
    """The request is not provably from the CRM: "missing", "malformed", "mismatch", "stale"..."""


class MalformedBody(WebhookError):
    """The signed body is not a payload we understand; the reason names the first problem."""


@dataclass(frozen=True)
class Hint:
    """A CRM record an event says changed: `kind` is one of HINT_KINDS, `id` the CRM's id."""

    kind: str
    id: str

    def __post_init__(self) -> None:
        if self.kind not in HINT_KINDS:
            raise ValueError(f"hint kind {self.kind!r} is not one of {sorted(HINT_KINDS)}")


@dataclass(frozen=True)
class ParsedEvent:
    """One event of a webhook delivery, validated and reduced to what the jobs need.

    `dedupe_key` is stable across the CRM's retries of the same event. An event with an
    `ignored_reason` (unsupported type, our own write) carries no hints: acknowledge and log it.
    `account_id` is the CRM account that sent it (HubSpot portal, Salesforce org).
    """

    dedupe_key: str
    type: str
    hints: tuple[Hint, ...]
    occurred_at_ms: int | None
    own_write: bool
    ignored_reason: str | None
    account_id: str
    body: str | None = None
    """The event's own JSON, when the delivery carries several events (kept in the inbox)."""


def first_problem(messages: Any) -> str:
    """ "field.path: message" for the first error of marshmallow's `normalized_messages()`."""
    path = []
    while isinstance(messages, dict) and messages:
        key = next(iter(messages))
        path.append(str(key))
        messages = messages[key]
    if isinstance(messages, list) and messages:
        messages = messages[0]
    return f"{'.'.join(path)}: {messages}"
