"""How the webhook fixtures' expectations give a ParsedEvent."""

from __future__ import annotations

import dataclasses
import json

from adapters.webhooks import ParsedEvent


def as_expected(event: ParsedEvent) -> dict:
    """The event as plain JSON, without its own body (kept for the inbox, tested apart)."""
    plain = json.loads(json.dumps(dataclasses.asdict(event)))
    plain.pop("body")
    return plain
