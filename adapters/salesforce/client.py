"""One Salesforce client per org: every call to Salesforce goes through `SalesforceClient.call`.

It owns what each call needs and nothing else: the org's `instance_url` and a current access
token (from the tenant's `TokenSource`, renewed once when Salesforce answers 401
`INVALID_SESSION_ID`), a requests session verifying Salesforce's certificate against the
configured CA bundle (the system's by default), simple-salesforce over it, the org's API usage
read from `Sforce-Limit-Info` after every call (reported to the application, which pauses
non-urgent work past its share: jobs/budget.py), and the translation of simple-salesforce's
and the network's errors into `adapters.errors`.

Error policy: a 401 renews the token once and repeats the call, a second 401 is
`AuthExpired`; a 5xx, a timeout or a dropped connection is retried within the call up to
ATTEMPTS times with jittered exponential backoff, then raised as `Transient`; 403
`REQUEST_LIMIT_EXCEEDED` is `RateLimited` (the org's daily allowance is spent: nothing is
retried within the call, the job's policy waits DAILY_LIMIT_RETRY), any other 403
`PermissionDenied`, 404 `NotFound`, any other 4xx `InvalidRequest` with Salesforce's
errorCode and message. Nothing else is retried, and no token is ever logged.

Queries: `query(soql)` returns every record, following `nextRecordsUrl` (2,000 records a
batch at most, child records counted) and the `nextRecordsUrl` of child results larger than a
batch, each before the parent's next batch (a parent's queryMore invalidates its children's
cursors). A query whose URI would pass URI_BUDGET bytes (Salesforce refuses URIs over 16,384
bytes with headers) is sent as the one subrequest of a Composite request, which carries it in
its body and counts as one API call like the GET.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError

from adapters.base import ApiUsage, TokenSource
from adapters.errors import (
    AuthExpired,
    CrmError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    Transient,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

API_VERSION = "59.0"
"""The REST API version every path names (Winter '24: every object and field used here)."""
ATTEMPTS = 4
"""Tries of one call before a 5xx or a network error is raised to the job."""
BACKOFF_BASE = 0.5
BACKOFF_CAP = 10.0
TIMEOUT = (5.0, 60.0)
"""Connect and read timeouts of one request, seconds (a 2,000-record batch takes a while)."""
DAILY_LIMIT_RETRY = 900.0
"""Seconds before work refused by the daily allowance is tried again: Salesforce counts a
rolling 24 hours and says nothing of when room comes back (no Retry-After)."""
COMPOSITE_QUERIES = 5
"""Query subrequests (query, queryAll, the next batch of either) one Composite request may
carry, of its 25 subrequests (REST API Developer Guide, Composite)."""
URI_BUDGET = 12_000
"""Bytes of query URI sent as a GET; longer queries go through Composite. Salesforce refuses a
URI over 16,384 bytes, and the URI and headers together over it: this leaves 4 KB of headers."""


class SalesforceClient:
    """Calls Salesforce for one org: `client.call(what, lambda sf: sf.query(...))`."""

    def __init__(
        self,
        org_id: str,
        tokens: TokenSource,
        *,
        instance_url: str | None = None,
        ca_bundle: str | None = None,
        version: str = API_VERSION,
        usage: Callable[[ApiUsage], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        attempts: int = ATTEMPTS,
    ) -> None:
        """`instance_url` overrides the one stored with the tokens (their `detail`);
        `ca_bundle` is a PEM file to verify Salesforce's certificate against instead of the
        system's (the environment's REQUESTS_CA_BUNDLE is then not read either)."""
        self.org_id = org_id
        self.tokens = tokens
        self.version = version
        self.sleep = sleep
        self.attempts = attempts
        self.report = usage
        self._instance_url = instance_url
        self.session = https_session(ca_bundle)
        self._sf: Salesforce | None = None
        self._token = ""
        self.usage: ApiUsage | None = None
        """The org's usage as the last answer stated it."""
        self.calls: Counter[str] = Counter()
        """Calls made, by `what`: for logs and the sync benchmark."""

    # -- one call ------------------------------------------------------------------------------

    @property
    def instance_url(self) -> str:
        url = self._instance_url or _detail(self.tokens, "instance_url")
        if not url:
            raise PermissionDenied(
                f"Salesforce org {self.org_id}: no instance URL stored with its tokens; "
                "install Deal Radar again from /install/salesforce"
            )
        return url.rstrip("/")

    def sf(self) -> Salesforce:
        """simple-salesforce on the current token (rebuilt when the token changes)."""
        token = self.tokens.current()
        if self._sf is None or token != self._token:
            self._sf = Salesforce(
                instance_url=self.instance_url, session_id=token, session=self.session,
                version=self.version,
            )  # fmt: skip
            self._token = token
        return self._sf

    def call(self, what: str, fn: Callable[[Salesforce], T], *, attempts: int | None = None) -> T:
        """Run one API call (`fn` gets simple-salesforce and returns its result), per the
        module's policy. `what` names it in errors and counts ("query Opportunity");
        `attempts` overrides the client's tries (1 for a create that must not be sent twice
        blindly: adapters/salesforce/actions.py)."""
        renewed = False
        tries = self.attempts if attempts is None else attempts
        failures = 0
        while True:
            sf = self.sf()
            self.calls[what] += 1
            try:
                result = fn(sf)
            except Exception as exc:  # simple-salesforce's and requests' own errors
                error = translate(exc, what)
            else:
                self._note_usage(sf)
                return result
            if isinstance(error, AuthExpired) and not renewed:
                self.tokens.renew(self._token)
                renewed = True
                continue
            if isinstance(error, RateLimited) and error.retry_after == DAILY_LIMIT_RETRY:
                self._note_spent()
            failures += 1
            if not isinstance(error, Transient) or failures >= tries:
                raise error
            self.sleep(backoff(failures))

    def _note_usage(self, sf: Salesforce) -> None:
        found = sf.api_usage.get("api-usage")
        if found is None:
            return
        self.usage = ApiUsage(int(found.used), int(found.total))
        if self.report is not None:
            self.report(self.usage)

    def _note_spent(self) -> None:
        """The allowance is spent: report it as full (the refusal carries no usage)."""
        limit = self.usage.limit if self.usage else 0
        self.usage = ApiUsage(limit, limit)
        if self.report is not None:
            self.report(self.usage)

    # -- helpers -------------------------------------------------------------------------------

    def query(self, soql: str, what: str) -> list[dict[str, Any]]:
        """Every record of a SOQL query, child results complete (see the module docstring)."""
        records: list[dict[str, Any]] = []
        page = self._first_page(soql, what)
        while True:
            for record in page.get("records") or ():
                self._complete_children(record, what)
                records.append(record)
            following = page.get("nextRecordsUrl")
            if page.get("done", True) or not following:
                return records
            page = self.call(
                f"{what} (more)",
                lambda sf, url=following: sf.query_more(
                    url, identifier_is_url=True, timeout=TIMEOUT
                ),
            )

    def _first_page(self, soql: str, what: str) -> dict[str, Any]:
        path = f"/services/data/v{self.version}/query"
        if len(path) + 1 + len(urlencode({"q": soql})) <= URI_BUDGET:
            return self.call(what, lambda sf: sf.query(soql, timeout=TIMEOUT))
        return self.first_pages({"q": soql}, what)["q"]

    def first_pages(
        self, queries: Mapping[str, str], what: str, *, include_deleted: bool = False
    ) -> dict[str, dict[str, Any]]:
        """The first batch of each SOQL query ({name: soql}), all asked in one Composite
        request: one API call whatever their number (at most COMPOSITE_QUERIES). With
        `include_deleted`, through queryAll. A query Salesforce refuses raises as its own call
        would; the batches after the first are the caller's (their `nextRecordsUrl`)."""
        if not 1 <= len(queries) <= COMPOSITE_QUERIES:
            raise ValueError(f"1 to {COMPOSITE_QUERIES} queries per Composite request")
        resource = "queryAll" if include_deleted else "query"
        path = f"/services/data/v{self.version}/{resource}"
        request = {
            "allOrNone": False,
            "compositeRequest": [
                {"method": "GET", "url": f"{path}?q={quote(soql, safe='')}", "referenceId": name}
                for name, soql in queries.items()
            ],
        }
        answer = self.call(
            f"{what} (composite)",
            lambda sf: sf.restful("composite", method="POST", json=request, timeout=TIMEOUT),
        )
        pages = {}
        for sub in answer["compositeResponse"]:
            status, body = int(sub["httpStatusCode"]), sub["body"]
            if status >= 300:
                name = "" if len(queries) == 1 else f" {sub['referenceId']}"
                raise _from_answer(status, body, f"{what}{name} (composite)")
            pages[str(sub["referenceId"])] = body
        return pages

    def _complete_children(self, record: dict[str, Any], what: str) -> None:
        for name, value in record.items():
            if not (isinstance(value, dict) and "records" in value and "done" in value):
                continue
            following = value.get("nextRecordsUrl")
            while not value.get("done", True) and following:
                more = self.call(
                    f"{what} (children {name})",
                    lambda sf, url=following: sf.query_more(
                        url, identifier_is_url=True, timeout=TIMEOUT
                    ),
                )
                value["records"].extend(more.get("records") or ())
                value["done"] = more.get("done", True)
                following = more.get("nextRecordsUrl")

    def limits(self) -> ApiUsage:
        """The org's daily API usage (`GET /limits`, one call: when no other call said it)."""
        answer = self.call("limits", lambda sf: sf.restful("limits", timeout=TIMEOUT))
        daily = (answer or {}).get("DailyApiRequests") or {}
        limit = int(daily.get("Max") or 0)
        usage = ApiUsage(max(0, limit - int(daily.get("Remaining") or 0)), limit)
        self.usage = usage
        if self.report is not None:
            self.report(usage)
        return usage


def https_session(ca_bundle: str | None) -> requests.Session:
    """A requests session for Salesforce: verifying against `ca_bundle` when one is given."""
    session = requests.Session()
    if ca_bundle:
        # requests prefers REQUESTS_CA_BUNDLE to the session's own verify unless told not to
        # read the environment: the configured bundle must win.
        session.trust_env = False
        session.verify = ca_bundle
    return session


def salesforce_session(crm: Mapping[str, str]) -> requests.Session:
    """`https_session` for the deployment's Salesforce settings (SALESFORCE_CA_BUNDLE)."""
    return https_session(crm.get("SALESFORCE_CA_BUNDLE"))


def backoff(attempt: int) -> float:
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))


def translate(exc: Exception, what: str) -> CrmError:
    """The adapters.errors equivalent of a simple-salesforce or network error from `what`."""
    if isinstance(exc, CrmError):
        return exc
    if isinstance(exc, SalesforceError):
        return _from_answer(exc.status, exc.content, what, cause=exc)
    if isinstance(exc, requests.RequestException | OSError):
        return _caused(Transient(f"Salesforce {what}: {type(exc).__name__}"), exc)
    raise exc  # a bug of ours, not Salesforce's answer: let it surface as it is


def errors_of(body: Any) -> list[tuple[str, str]]:
    """(errorCode, message) of each error in a REST error body (`[{errorCode, message}]`), or
    of an OAuth error (`{error, error_description}`)."""
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except ValueError:
            return [("", str(body)[:300])]
    if isinstance(body, dict):
        if "error" in body:
            return [(str(body["error"]), str(body.get("error_description") or ""))]
        body = [body]
    found = []
    for item in body if isinstance(body, list) else ():
        if isinstance(item, dict):
            code = item.get("errorCode") or item.get("statusCode") or ""
            found.append((str(code), str(item.get("message") or "")))
    return found


def _from_answer(status: int, body: Any, what: str, *, cause: Exception | None = None) -> CrmError:
    found = errors_of(body)
    code, message = found[0] if found else ("", "")
    text = f"Salesforce {what}: {status} {code} {message}".strip()
    if status == 401:
        error: CrmError = AuthExpired(text)
    elif status == 403 and code == "REQUEST_LIMIT_EXCEEDED":
        daily = "TotalRequests" in message
        # The daily allowance past, or too many long requests at once (a short wait).
        error = RateLimited(text, retry_after=DAILY_LIMIT_RETRY if daily else 20.0)
    elif status == 403:
        error = PermissionDenied(text)
    elif status == 404:
        error = NotFound(text)
    elif status >= 500:
        error = Transient(text)
    else:
        error = InvalidRequest(text)
    error.code = code  # type: ignore[attr-defined]  # for callers telling errors apart
    return _caused(error, cause) if cause is not None else error


def _caused(error: CrmError, cause: Exception) -> CrmError:
    error.__cause__ = cause
    return error


def _detail(tokens: TokenSource, name: str) -> str | None:
    detail = getattr(tokens, "detail", None)
    return detail(name) if detail is not None else None
