"""Zendesk Sell OAuth 2 and personal access tokens: the consent URL, the code and refresh
grants, and the account a token belongs to.

Install: the admin's browser goes to `authorize_url(...)`; Sell sends it back to our redirect
URI with a `code`, which `exchange_code` swaps for tokens (an access token of about an hour
and a refresh token, crm-apis.md 3.1); `account(token)` names the Sell account
(`GET /v2/accounts/self`). `refresh_grant` renews the access token; Sell returns a new refresh
token with it. A personal access token (64 characters, made in Sell's settings) needs no grant:
`personal_tokens` stores it the same way, marked personal, and a refused one cannot be renewed.

Error policy: a refused code, redirect URI, client id or secret is `InvalidRequest`; a refused
refresh token (the grant revoked, the app removed) is `PermissionDenied`, an admin must install
again; a timeout, 5xx or dropped connection is `Transient`; a 429 `RateLimited`. Nothing is
retried here (the callback answers a browser, the jobs retry by policy), nothing logs a token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests

from adapters.errors import CrmError, InvalidRequest, PermissionDenied, Transient
from adapters.sell.client import API_HOST, TIMEOUT, USER_AGENT, translate

AUTHORIZE_URL = "https://api.getbase.com/oauth2/authorize"
"""Sell's consent page (the path is UNCONFIRMED: crm-apis.md 3.1); the emulator's in tests."""
SCOPES: tuple[str, ...] = ("read", "write", "profile")
"""Deal Radar reads deals, contacts and activities, writes its custom fields, tasks and notes,
and reads the account (profile)."""
PERSONAL_TOKEN_LENGTH = 64
"""basecrm-python refuses a personal access token of any other length (crm-apis.md 3.1)."""


@dataclass(frozen=True)
class Account:
    """The Sell account a token belongs to."""

    id: str
    name: str


def authorize_url(
    *,
    client_id: str,
    redirect_uri: str,
    state: str,
    base: str = AUTHORIZE_URL,
    scopes: Sequence[str] = SCOPES,
) -> str:
    """The consent screen's URL; scopes are joined by `+`, not `%20` (crm-apis.md 3.1)."""
    query = urlencode(
        {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
         "state": state}
    )  # fmt: skip
    return f"{base}{'&' if '?' in base else '?'}{query}&scope={'+'.join(scopes)}"


def exchange_code(
    code: str,
    *,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    host: str = API_HOST,
    now: Callable[[], datetime],
) -> tuple[dict[str, Any], datetime]:
    """The tokens an authorization code is worth, and when the access token expires."""
    return _grant(
        host, client_id, client_secret, now,
        grant_type="authorization_code", code=code, redirect_uri=redirect_uri,
    )  # fmt: skip


def refresh_grant(
    stored: dict[str, Any],
    *,
    client_id: str,
    client_secret: str,
    host: str = API_HOST,
    now: Callable[[], datetime],
) -> tuple[dict[str, Any], datetime]:
    """New tokens for the stored ones (jobs.tokens' Refresh). A personal access token cannot
    be renewed: Sell refusing it means it was revoked, which is PermissionDenied."""
    if stored.get("personal"):
        raise PermissionDenied(
            "Zendesk Sell refused the personal access token (revoked, or its user lost access); "
            "make a new one in Sell (Settings > Integrations > OAuth > Access tokens) and give "
            "it to `dealradar tenants add --crm sell --token-stdin` again (it replaces this one "
            "and makes the tenant active again)"
        )
    refresh_token = stored.get("refresh_token")
    if not refresh_token:
        raise PermissionDenied("no Sell refresh token is stored; install Deal Radar again")
    try:
        tokens, expires = _grant(
            host, client_id, client_secret, now,
            grant_type="refresh_token", refresh_token=refresh_token,
        )  # fmt: skip
    except InvalidRequest as exc:
        if "invalid_grant" in str(exc):
            raise PermissionDenied(
                "Zendesk Sell refused the refresh token: the grant was revoked or the app "
                "removed; install Deal Radar again from /install/sell"
            ) from exc
        raise
    # Sell answers a new refresh token (crm-apis.md 3.1); an answer without one keeps the old,
    # rather than store nothing and lose the grant at the next expiry.
    tokens["refresh_token"] = tokens["refresh_token"] or refresh_token
    return tokens, expires


def personal_tokens(token: str) -> dict[str, Any]:
    """A personal access token as the tenant's stored tokens; ValueError when it cannot be one."""
    token = token.strip()
    if len(token) != PERSONAL_TOKEN_LENGTH or not token.isalnum():
        raise ValueError(
            f"a Sell personal access token is {PERSONAL_TOKEN_LENGTH} letters and digits; "
            f"the one given has {len(token)} characters"
        )
    return {"access_token": token, "personal": True}


def account(access_token: str, *, host: str = API_HOST) -> Account:
    """The account of a token (`GET /v2/accounts/self`)."""
    what = "GET /v2/accounts/self"
    try:
        response = requests.get(
            host.rstrip("/") + "/v2/accounts/self", timeout=TIMEOUT,
            headers={"Authorization": f"Bearer {access_token}", "User-Agent": USER_AGENT,
                     "Accept": "application/json"},
        )  # fmt: skip
    except requests.RequestException as exc:
        raise Transient(f"Sell {what}: {type(exc).__name__}") from exc
    if response.status_code >= 400:
        raise translate(response, what)
    data = (response.json() or {}).get("data") or {}
    if data.get("id") is None:
        raise Transient(f"Sell {what}: the answer names no account")
    return Account(id=str(data["id"]), name=str(data.get("name") or ""))


def _grant(
    host: str, client_id: str, client_secret: str, now: Callable[[], datetime], **form: str
) -> tuple[dict[str, Any], datetime]:
    what = f"POST /oauth2/token ({form['grant_type']})"
    try:
        response = requests.post(
            host.rstrip("/") + "/oauth2/token", data=form, auth=(client_id, client_secret),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"}, timeout=TIMEOUT,
        )  # fmt: skip
    except requests.RequestException as exc:
        raise Transient(f"Sell {what}: {type(exc).__name__}") from exc
    if response.status_code >= 400:
        error: CrmError = translate(response, what)
        if response.status_code == 401:  # the token endpoint's 401 is our client, not a token
            error = InvalidRequest(f"{error} (check SELL_CLIENT_ID and SELL_CLIENT_SECRET)")
        raise error
    answer = response.json()
    tokens = {"access_token": answer["access_token"], "refresh_token": answer.get("refresh_token")}
    return tokens, now() + timedelta(seconds=int(answer.get("expires_in") or 3599))
