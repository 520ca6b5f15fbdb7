"""One HubSpot client per portal: every call to HubSpot goes through `HubSpotClient.call`.

It owns what each call needs and nothing else: a current access token (from the tenant's
`TokenSource`, renewed once when HubSpot says it expired), a place in the portal's rate budget
(shared by every worker through Redis, so that ten workers together stay under HubSpot's 110
requests per 10 s per installed portal), and the translation of the SDK's errors into
`adapters.errors`.

Error policy: a 401 renews the token once and repeats the call, a second 401 is `AuthExpired`;
a 429 or a 5xx, a timeout or a dropped connection is retried within the call up to ATTEMPTS
times with jittered exponential backoff (honouring Retry-After, else HubSpot's 10 s window for
a 429), then raised as `RateLimited` or `Transient` for the job's retry policy (a 429 of the
DAILY policy at once, to be tried again in an hour); HubSpot's two other "wait, then retry"
answers (its error handling guide) are `RateLimited` too: 423 Locked after LOCKED_RETRY, 477
Migration in Progress after its Retry-After, which goes to the job; every request has TIMEOUT;
403 is `PermissionDenied` (a scope lost, the app uninstalled), 404 `NotFound`, any other 4xx
`InvalidRequest` with HubSpot's message. Nothing else is retried, nothing is logged with a token.
The inputs a 207 did not serve are translated the same way (`translate_batch_error`), for the
adapter to decide which it can do without.

The official SDK builds a new API client (and a new connection pool) on every attribute access;
an `api_factory` here keeps one per API class, so calls reuse their connections and a renewed
token reaches every API at once.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from hubspot import HubSpot
from urllib3.exceptions import HTTPError as Urllib3Error

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

T = TypeVar("T")

API_HOST = "https://api.hubapi.com"
"""HubSpot's API; the sandbox emulator's URL in tests and `make run`."""
ATTEMPTS = 4
"""Tries of one call before a 429, a 5xx or a network error is raised to the job."""
TIMEOUT = (5.0, 30.0)
"""Connect and read timeouts of one request, seconds."""
BURST = (100, 10.0)
"""Requests per rolling window (seconds) we allow ourselves per portal: under HubSpot's 110
per 10 s for public apps, leaving room for a clock that drifts between workers."""
SEARCH_BURST = (4, 1.0)
"""The search endpoints' own limit (5 per second per portal), with the same margin."""
BUDGET_WAIT = 30.0
"""The longest a call waits for room in the budget before giving up as RateLimited."""
DAILY_RETRY = 3600.0
"""Seconds before trying again after a 429 of the DAILY policy: the day's allowance comes back
at midnight in the portal's time zone (crm-apis.md 1.7), which the client does not know, so the
job tries hourly until then rather than every few minutes."""
LOCKED_RETRY = 2.0
"""Seconds before trying again after a 423 Locked: HubSpot locks a portal's records for 2 s
when it receives a large volume of writes in a short time (a sweep's write-back) and asks for
at least that delay (https://developers.hubspot.com/docs/api-reference/error-handling)."""
MIGRATION_RETRY = 3600.0
"""Seconds before trying again after a 477 Migration in Progress that names no Retry-After: the
portal is moving between data centres, which HubSpot says typically takes up to 24 hours."""

_TAKE = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('zremrangebyscore', KEYS[1], '-inf', now - window)
if redis.call('zcard', KEYS[1]) < limit then
  redis.call('zadd', KEYS[1], now, ARGV[4])
  redis.call('pexpire', KEYS[1], math.ceil(window * 1000))
  return '0'
end
local oldest = redis.call('zrange', KEYS[1], 0, 0, 'WITHSCORES')[2]
return tostring(tonumber(oldest) + window - now)
"""


class RateBudget:
    """A rolling-window request budget per portal, shared by every process through Redis.

    `take()` returns once the call may go, sleeping while the window is full (a sliding log:
    HubSpot's own limit is a rolling window, so a fixed one would let twice the limit through
    around its edges)."""

    def __init__(
        self,
        redis: Any,
        key: str,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = BUDGET_WAIT,
    ) -> None:
        self.redis, self.key, self.limit, self.window = redis, key, limit, window
        self.clock, self.sleep, self.max_wait = clock, sleep, max_wait
        self._script = redis.register_script(_TAKE)

    def take(self) -> None:
        waited = 0.0
        while True:
            wait = float(
                self._script(
                    keys=[self.key],
                    args=[self.clock(), self.window, self.limit, uuid.uuid4().hex],
                )
            )
            if wait <= 0:
                return
            if waited + wait > self.max_wait:
                raise RateLimited(
                    f"the request budget {self.key} stays full; try again later",
                    retry_after=wait,
                )
            self.sleep(wait)
            waited += wait


class _Apis:
    """The SDK's `api_factory`: one API object per class, sharing the current token."""

    def __init__(self) -> None:
        self.apis: dict[tuple[str, str], Any] = {}
        self.configurations: list[Any] = []
        self.token = ""

    def __call__(self, package: Any, api_name: str, config: dict[str, Any]) -> Any:
        key = (package.__name__, api_name)
        api = self.apis.get(key)
        if api is None:
            configuration = package.Configuration()
            configuration.host = config["host"]
            configuration.access_token = self.token
            self.configurations.append(configuration)
            api_client = package.ApiClient(configuration=configuration)
            _timed(api_client.rest_client)
            api = self.apis[key] = getattr(package, api_name)(api_client=api_client)
        return api

    def use(self, token: str) -> None:
        if token != self.token:
            self.token = token
            for configuration in self.configurations:
                configuration.access_token = token


def _timed(rest_client: Any) -> None:
    """Every request of this generated REST client with TIMEOUT unless the call gives its own:
    the SDK's default is none, and a connection HubSpot stops answering would hold the worker
    until RQ kills the job, never retried here as Transient."""
    request = rest_client.request

    def timed(*args: Any, _request_timeout: Any = None, **kwargs: Any) -> Any:
        return request(*args, _request_timeout=_request_timeout or TIMEOUT, **kwargs)

    rest_client.request = timed


class HubSpotClient:
    """Calls HubSpot for one portal: `client.call(what, lambda sdk: sdk.crm...(...))`."""

    def __init__(
        self,
        portal_id: str,
        tokens: TokenSource,
        redis: Any,
        *,
        host: str = API_HOST,
        burst: tuple[int, float] | None = BURST,
        search_burst: tuple[int, float] | None = SEARCH_BURST,
        sleep: Callable[[float], None] = time.sleep,
        attempts: int = ATTEMPTS,
        app: tuple[str, str] | None = None,
    ) -> None:
        self.portal_id = portal_id
        self.tokens = tokens
        self.host = host.rstrip("/")
        self.app = app
        """The app's client id and secret, for the OAuth calls that need them (token
        introspection: adapters/hubspot/provision.py `check_scopes`); None when not configured."""
        self.sleep = sleep
        self.attempts = attempts
        self._apis = _Apis()
        self.sdk = HubSpot(host=host.rstrip("/"), base_url=host.rstrip("/"), api_factory=self._apis)
        prefix = f"dealradar:hubspot:budget:{portal_id}"
        self.budget = burst and RateBudget(redis, prefix, *burst, sleep=sleep)
        self.search_budget = search_burst and RateBudget(
            redis, prefix + ":search", *search_burst, sleep=sleep
        )
        self.calls: dict[str, int] = {}
        """Calls made, by `what`: for logs and the sync benchmark."""

    def call(
        self,
        what: str,
        fn: Callable[[HubSpot], T],
        *,
        search: bool = False,
        attempts: int | None = None,
    ) -> T:
        """Run one SDK call (`fn` gets the SDK and returns its result), per the module's policy.

        `what` names the call in errors and counts ("deals.batch_read"); `search` puts it in
        the search endpoints' budget as well; `attempts` overrides the client's tries (1 for a
        create that must not be sent twice blindly: adapters/hubspot/actions.py)."""
        renewed = False
        tries = self.attempts if attempts is None else attempts
        failures = 0  # the repeat after a renewed token is not one of the tries
        while True:
            token = self.tokens.current()
            self._apis.use(token)
            if self.budget:
                self.budget.take()
            if search and self.search_budget:
                self.search_budget.take()
            self.calls[what] = self.calls.get(what, 0) + 1
            try:
                return fn(self.sdk)
            except Exception as exc:  # every generated SDK package has its own ApiException
                error = translate(exc, what)
            if isinstance(error, AuthExpired) and not renewed:
                self.tokens.renew(token)
                renewed = True
                continue
            failures += 1
            if not isinstance(error, (RateLimited, Transient)) or failures >= tries:
                raise error
            if isinstance(error, RateLimited) and (error.retry_after or 0) > BUDGET_WAIT:
                raise error  # the job's backoff waits that long, not a worker asleep here
            self.sleep(backoff(failures, error))


def translate(exc: Exception, what: str) -> CrmError:
    """The adapters.errors equivalent of an SDK or network error from the call `what`."""
    if isinstance(exc, CrmError):
        return exc
    status = getattr(exc, "status", None)
    if not isinstance(status, int) or status == 0:
        if isinstance(exc, (Urllib3Error, OSError)):
            return _caused(Transient(f"HubSpot {what}: {type(exc).__name__}"), exc)
        raise exc  # a bug of ours, not HubSpot's answer: let it surface as it is
    body = _body(exc)
    message = f"HubSpot {what}: {status} {body.get('message') or body.get('category') or ''}"
    if status == 401:
        error: CrmError = AuthExpired(message)
    elif status == 403:
        error = PermissionDenied(message)
    elif status == 404:
        error = NotFound(message)
    elif status == 429:
        policy = body.get("policyName", "unknown")
        error = RateLimited(
            f"{message} (policy {policy})",
            retry_after=DAILY_RETRY if policy == "DAILY" else _retry_after(exc),
        )
    elif status == 423:
        error = RateLimited(f"{message} (records locked)", retry_after=LOCKED_RETRY)
    elif status == 477:
        error = RateLimited(
            f"{message} (portal migrating)", retry_after=_retry_after(exc, MIGRATION_RETRY)
        )
    elif status >= 500:
        error = Transient(message)
    else:
        error = InvalidRequest(message)
    return _caused(error, exc)


def translate_batch_error(error: Mapping[str, Any], what: str) -> CrmError:
    """The adapters.errors equivalent of one `StandardError` of a 207 answer from the call
    `what`: inputs HubSpot did not serve. OBJECT_NOT_FOUND is `NotFound` (an associations read
    says so of a record without associations as of one deleted); MISSING_SCOPES is
    `PermissionDenied` naming the scopes HubSpot lists, as a 403 would be; any other category
    `InvalidRequest` with HubSpot's message, never a silent gap."""
    category = str(error.get("category") or "")
    message = f"HubSpot {what}: {category} {error.get('message') or ''}".rstrip()
    ids = (error.get("context") or {}).get("fromObjectId") or ()
    if ids:
        message += f" (record {ids[0]})" if len(ids) == 1 else f" ({len(ids)} records: {ids[0]}...)"
    if category == "OBJECT_NOT_FOUND":
        return NotFound(message)
    if category == "MISSING_SCOPES":
        scopes = _scopes(error)
        wanted = f"the {', '.join(scopes)} scope" if scopes else "the scopes it names"
        denied = PermissionDenied(
            f"{message}; grant the app {wanted}, then install Deal Radar again"
        )
        return _caused(denied, _BatchRefusal(error))  # read by scope_refusal, as a 403's body
    return InvalidRequest(message)


def _scopes(error: Mapping[str, Any]) -> list[str]:
    """The scopes an error says are missing, in its context or its details' (`missingScopes` in
    HubSpot's spec example; `requiredScopes` in the 403 bodies public integrations quote)."""
    contexts = [error.get("context")] + [
        d.get("context") for d in error.get("errors") or () if isinstance(d, Mapping)
    ]
    found: list[str] = []
    for context in contexts:
        if not isinstance(context, Mapping):
            continue
        for key in ("missingScopes", "requiredScopes", "requiredGranularScopes"):
            values = context.get(key)
            if isinstance(values, list):
                found += [str(v) for v in values if str(v) not in found]
    return found


def _caused(error: CrmError, cause: Exception) -> CrmError:
    error.__cause__ = cause
    return error


def _body(exc: Exception) -> dict[str, Any]:
    raw = getattr(exc, "body", None)
    try:
        body = json.loads(raw) if raw else {}
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def required_scopes(cause: BaseException | None) -> list[str]:
    """The scopes a 403 MISSING_SCOPES names; `cause` is the SDK's error (a CrmError's
    `__cause__`)."""
    return _scopes(_body(cause)) if isinstance(cause, Exception) else []


class _BatchRefusal(Exception):
    """One error of a 207 answer, carried as an SDK error carries its answer's body."""

    def __init__(self, error: Mapping[str, Any]) -> None:
        super().__init__(str(error.get("message") or ""))
        self.body = json.dumps(error)


def scope_refusal(error: CrmError) -> list[str] | None:
    """When `error` (from `call`) is HubSpot's MISSING_SCOPES, a 403 or one error of a 207, the
    scopes it names (maybe none); None for any other error, a 403 about a user's or the
    portal's access among them."""
    cause = error.__cause__
    body = _body(cause) if isinstance(cause, Exception) else {}
    if body.get("category") != "MISSING_SCOPES":
        return None
    return _scopes(body)


def _retry_after(exc: Exception, default: float | None = None) -> float:
    """Retry-After when HubSpot sends one (undocumented for a 429: crm-apis.md 1.7), else
    `default`, else the rate limit's window."""
    headers = getattr(exc, "headers", None) or {}
    for name in ("Retry-After", "retry-after"):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                break
    if default is not None:
        return default
    interval = headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
    try:
        return float(interval) / 1000 if interval else BURST[1]
    except ValueError:
        return BURST[1]
