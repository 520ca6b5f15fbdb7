"""Slack incoming webhooks: one POST of a message to a URL that carries its own secret.

The URL is a credential (whoever has it can post to the channel): it is stored sealed, never
logged (only its host is), and called through the SSRF policy like every tenant-chosen URL.

Error policy: `post` raises `SlackError` with `transient=True` when the message surely never
reached Slack (no connection made: refused, unreachable, connect timeout; TLS failed), 429
(with Slack's Retry-After) or 5xx, and `transient=False` for what Slack will keep refusing (400
invalid_payload, 403 invalid_token or action_prohibited, 404 no_service or channel_not_found,
410 channel_is_archived: the webhook needs replacing), for an address the SSRF policy refuses,
and when the request left but no answer came (a read timeout, the connection dropped): Slack
may have posted it, and posting again could post it twice (at most once per channel).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from connector.notify.ssrf import OutboundPolicy, UnsafeUrl

TIMEOUT = (5.0, 15.0)
"""Seconds to connect and to read Slack's answer."""


class SlackError(Exception):
    def __init__(self, message: str, *, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after


def post(policy: OutboundPolicy, url: str, message: dict[str, Any]) -> None:
    """Post `message` ({"text", "blocks"?}) to the incoming webhook at `url`."""
    host = urlsplit(url).hostname or "?"
    try:
        policy.parse(url)
        with policy.session() as session:
            response = session.post(url, json=message, timeout=TIMEOUT, allow_redirects=False)
    except UnsafeUrl as exc:
        raise SlackError(f"the Slack webhook is refused: {exc}", transient=False) from None
    except requests.RequestException as exc:
        if _never_sent(exc):
            raise SlackError(
                f"cannot reach the Slack webhook at {host} ({type(exc).__name__})", transient=True
            ) from None
        raise SlackError(
            f"no answer from the Slack webhook at {host} after the message was sent "
            f"({type(exc).__name__}): it may have been delivered, so it is not posted again",
            transient=False,
        ) from None
    if response.status_code == 200:
        return
    reason = response.text[:100].strip() or response.reason
    if response.status_code == 429 or response.status_code >= 500:
        retry_after = _seconds(response.headers.get("Retry-After"))
        raise SlackError(
            f"Slack at {host} answered {response.status_code} ({reason}); retried later",
            transient=True,
            retry_after=retry_after,
        )
    raise SlackError(
        f"Slack at {host} refused the message: {response.status_code} {reason}; give the rep "
        "a new incoming webhook URL",
        transient=False,
    )


def _never_sent(exc: requests.RequestException) -> bool:
    """Whether Slack cannot have received the request. With retries off, urllib3 reports a
    connection never made (refused, unreachable, DNS, connect timeout: its ConnectTimeoutError
    family, which it retries as "fairly sure the server did not receive the request") as a
    MaxRetryError; a read timeout or a connection dropped after sending comes as itself. TLS
    fails in its handshake, before any byte of the request."""
    if isinstance(exc, requests.exceptions.SSLError):
        return True
    cause = exc.args[0] if exc.args else None
    return isinstance(cause, MaxRetryError) and isinstance(cause.reason, ConnectTimeoutError)


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
