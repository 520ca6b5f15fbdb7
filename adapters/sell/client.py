"""One Zendesk Sell client per account: every call to Sell goes through `SellClient.call`.

A thin `requests` client (basecrm-python, Sell's official one, is Python 2-era: crm-apis.md
3.8): it sends what Sell requires on every request, a `User-Agent` (else 400
invalid_user_agent), `Authorization: Bearer` and `Accept: application/json`; wraps write
bodies in Sell's `{"data": ...}` envelope and hands back the answer's JSON; renews the access
token once when Sell says it expired; counts calls by endpoint; and translates Sell's answers
into `adapters.errors`.

Error policy: a 401 renews the token once and repeats the call, a second 401 is `AuthExpired`;
a 5xx, a timeout or a dropped connection is retried within the call up to ATTEMPTS times with
jittered backoff, then raised as `Transient`; a 429 is raised at once as `RateLimited` with
Sell's Retry-After (Sell's allowance is per hour, so waiting inside the call cannot help: the
job's retry policy, jobs.policy, backs off instead); 403 is `PermissionDenied`, 404 `NotFound`,
410 on a Firehose position `PositionExpired`, any other 4xx `InvalidRequest` with Sell's
message. Nothing is logged with a token.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import requests

from adapters.base import TokenSource
from adapters.errors import (
    AuthExpired,
    CrmError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    Transient,
)
from adapters.retry import backoff

log = logging.getLogger(__name__)

API_HOST = "https://api.getbase.com"
"""Sell's API (Core API under /v2, Firehose under /v3); the emulator's URL in tests."""
USER_AGENT = "DealRadar/0.1 (Zendesk Sell adapter; +https://dealradar.example/sell)"
"""Sell refuses a request without a User-Agent (crm-apis.md 3.1)."""
ATTEMPTS = 4
"""Tries of one call before a 5xx or a network error is raised to the job."""
TIMEOUT = (5.0, 30.0)
"""Connect and read timeouts of one request, seconds."""
PER_PAGE = 100
"""The most Sell lists in one page (Core API `per_page`, Firehose `limit`)."""


class PositionExpired(CrmError):
    """The Firehose no longer holds events from this position (410: older than its 72 hours):
    the stream must be read again in full."""


class SellClient:
    """Calls Sell for one account: `client.call("GET", "/v2/deals", params=...)`."""

    def __init__(
        self,
        tokens: TokenSource,
        *,
        host: str = API_HOST,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        attempts: int = ATTEMPTS,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.tokens = tokens
        self.host = host.rstrip("/")
        self.session = session or requests.Session()
        self.session.headers.update({"User-Agent": user_agent, "Accept": "application/json"})
        self.sleep = sleep
        self.attempts = attempts
        self.calls: dict[str, int] = {}
        """Calls made, by endpoint ("GET /v2/deals/{id}"): for logs and the sync benchmark."""

    def call(
        self,
        method: str,
        path: str,
        *,
        endpoint: str | None = None,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        attempts: int | None = None,
    ) -> dict[str, Any]:
        """One request, per the module's error policy; the answer's JSON ({} for a 204).

        `endpoint` names the route in counts and errors (default: the path); `data` is the
        record to write, sent in Sell's envelope; `attempts` overrides the client's tries (1 for
        a create that must not be sent twice blindly: adapters/sell/actions.py)."""
        what = f"{method} {endpoint or path}"
        body = {"data": dict(data)} if data is not None else None
        renewed = False
        tries = self.attempts if attempts is None else attempts
        failures = 0  # the repeat after a renewed token is not one of the tries
        while True:
            token = self.tokens.current()
            self.calls[what] = self.calls.get(what, 0) + 1
            try:
                response = self.session.request(
                    method, self.host + path, params=params, json=body, timeout=TIMEOUT,
                    headers={"Authorization": f"Bearer {token}"},
                )  # fmt: skip
                error = None if response.status_code < 400 else translate(response, what)
            except requests.RequestException as exc:
                response, error = None, Transient(f"Sell {what}: {type(exc).__name__}")
                error.__cause__ = exc
            if error is None and response is not None:
                return _json(response, what)
            assert error is not None
            if isinstance(error, AuthExpired) and not renewed:
                self.tokens.renew(token)
                renewed = True
                continue
            failures += 1
            if not isinstance(error, Transient) or failures >= tries:
                raise error
            self.sleep(backoff(failures, error))

    def get(self, path: str, *, endpoint: str | None = None, **params: Any) -> dict[str, Any]:
        return self.call("GET", path, endpoint=endpoint, params=params)

    def pages(
        self, path: str, *, endpoint: str | None = None, **params: Any
    ) -> Iterator[list[dict[str, Any]]]:
        """Each page of a Core API list, as its records (`items[].data`), 100 per page, until
        Sell gives no `next_page` link."""
        page = 1
        while True:
            answer = self.get(path, endpoint=endpoint, page=page, per_page=PER_PAGE, **params)
            yield records(answer)
            if not ((answer.get("meta") or {}).get("links") or {}).get("next_page"):
                return
            page += 1


def records(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The records of a Core API list answer (`items[].data`)."""
    return [item["data"] for item in answer.get("items") or () if isinstance(item, dict)]


def translate(response: requests.Response, what: str) -> CrmError:
    """The adapters.errors equivalent of an error answer from the call `what`."""
    status = response.status_code
    message = f"Sell {what}: {status} {_message(response)}".rstrip()
    if status == 401:
        return AuthExpired(message)
    if status == 403:
        return PermissionDenied(message)
    if status == 404:
        return NotFound(message)
    if status == 410:
        return PositionExpired(message)
    if status == 429:
        return RateLimited(message, retry_after=_retry_after(response))
    if status >= 500:
        return Transient(message)
    return InvalidRequest(message)


def _message(response: requests.Response) -> str:
    """Sell's error envelope `{"errors": [{"error": {code, message, field?}}]}`, or the OAuth
    endpoint's `{"error", "error_description"}`, as one line."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0].get("error") or {}
        text = f"{first.get('code', '')}: {first.get('message', '')}".strip(": ")
        # The field refused (a JSON pointer such as /data/custom_fields/<name>) says what a
        # generic code ("invalid") does not: callers tell a custom field's refusal by it.
        return f"{text} (field {first['field']})" if first.get("field") else text
    if "error" in body:
        return f"{body['error']}: {body.get('error_description', '')}".strip(": ")
    return ""


def _retry_after(response: requests.Response) -> float | None:
    """Retry-After in seconds when Sell sends one (it documents none: crm-apis.md 3.7)."""
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _json(response: requests.Response, what: str) -> dict[str, Any]:
    if response.status_code == 204 or not response.content:
        return {}
    try:
        body = response.json()
    except ValueError as exc:
        raise Transient(f"Sell {what}: an answer that is not JSON") from exc
    return body if isinstance(body, dict) else {}
