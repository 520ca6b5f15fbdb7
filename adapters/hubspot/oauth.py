"""HubSpot OAuth for a public app: the consent URL, the code and refresh grants, token info.

Install: the admin's browser goes to `authorize_url(...)`; HubSpot sends it back to our
redirect URI with a `code`, which `exchange_code` swaps for tokens; `token_info` names the
portal (hub id) and the scopes granted. Later, `refresh_grant` renews the 30-minute access
token (crm-apis.md 1.1). Every call goes to HubSpot's date-versioned OAuth endpoints (`POST
/oauth/2026-03/token`, `POST /oauth/2026-03/token/introspect`), where its v1 migration guide
points, with the client's TIMEOUT and its error translation. They take every parameter (the
code, the tokens, the client secret) in a form body, never in the URL: HubSpot retires v1,
whose token info put the access token in the URL path, on 2027-02-16. The official SDK
(hubspot-api-client 12) still calls v1, so these are plain `requests` calls.

Error policy: a refused authorization code, redirect URI, client id or secret is
`InvalidRequest` (the admin starts the install again, or our configuration is wrong; a 401 from
these endpoints refuses our app's credentials, not a token); a refused refresh token
(BAD_REFRESH_TOKEN, RFC 6749's invalid_grant: the grant was revoked, the app uninstalled) is
`PermissionDenied`, an admin must install again; an access token introspection says is not
active is `NotFound`; a timeout, 5xx or dropped connection is `Transient`; a 429 `RateLimited`;
an answer without the fields HubSpot documents is `InvalidRequest` naming the field. Nothing is
retried here (the callback answers the browser, the jobs retry by policy, `check_scopes` goes
through `HubSpotClient.call`), and nothing logs a token: an error's text has every secret we
sent (code, tokens, client secret) replaced by `***`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests

from adapters.errors import (
    AuthExpired,
    CrmError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    Transient,
)
from adapters.hubspot.client import API_HOST, TIMEOUT, _body, translate

AUTHORIZE_URL = "https://app.hubspot.com/oauth/authorize"
"""HubSpot's consent screen; the emulator's /oauth/authorize in tests and `make run`."""
SCOPES: tuple[str, ...] = (
    "oauth",
    "crm.objects.deals.read",
    "crm.objects.deals.write",  # the Deal Radar properties' values
    "crm.objects.contacts.read",  # contacts, and calls, emails, meetings, notes, tasks (v3)
    "crm.objects.contacts.write",  # tasks and notes the actions create
    "crm.objects.owners.read",
    "crm.schemas.deals.read",
    "crm.schemas.deals.write",  # the Deal Radar property group and properties
)
"""Required scopes: HubSpot refuses the consent unless the app's settings list exactly these
as required (since October 2024 the URL and the app settings must match)."""
OPTIONAL_SCOPES: tuple[str, ...] = ("sales-email-read",)
"""Granted when the portal has them: email details (To/Cc headers) beyond the summary fields."""
TOKEN_PATH = "/oauth/2026-03/token"
"""The code and refresh grants (form body; crm-apis.md 1.1): the endpoint HubSpot's v1
migration guide names (https://developers.hubspot.com/docs/api-reference/legacy/
authentication/oauth-tokens/v1/migration-guide). `/oauth/v3/token` is the same operation in
HubSpot's specs, which its docs now list as legacy; v1 retires on 2027-02-16."""
INTROSPECT_PATH = "/oauth/2026-03/token/introspect"
"""What HubSpot knows of a token: the client credentials and the token in a form body."""
_SECRET_FIELDS = ("code", "refresh_token", "token", "client_secret")
"""The form fields whose values never appear in an error's text."""


@dataclass(frozen=True)
class TokenInfo:
    """What HubSpot says about an access token: whose portal, which scopes, for how long."""

    portal_id: str
    scopes: tuple[str, ...]
    expires_in: int
    user: str = ""
    """The email of the user who granted it (the installing admin)."""
    hub_domain: str = ""

    @classmethod
    def from_answer(cls, answer: Mapping[str, Any], what: str = "oauth.token_info") -> TokenInfo:
        """From introspection's answer for an active access token (`PublicAccessTokenInfoResponse`
        in HubSpot's 2026-03 spec: `hub_id`, `scopes` a list, `expires_in`, `user`...)."""
        if answer.get("hub_id") is None:
            raise InvalidRequest(f"HubSpot {what}: the answer names no hub_id")
        scopes = answer.get("scopes") or ()
        if isinstance(scopes, str):  # documented as a list; RFC 7662 spaces them in a string
            scopes = scopes.split()
        return cls(
            portal_id=str(answer["hub_id"]),
            scopes=tuple(str(s) for s in scopes),
            expires_in=int(answer.get("expires_in") or 0),
            user=str(answer.get("user") or ""),
            hub_domain=str(answer.get("hub_domain") or ""),
        )

    def missing(self, required: Iterable[str] = SCOPES) -> list[str]:
        """The required scopes this token was not granted, in the order they are listed."""
        return [s for s in required if s not in self.scopes]


def authorize_url(
    *,
    client_id: str,
    redirect_uri: str,
    state: str,
    base: str = AUTHORIZE_URL,
    scopes: Sequence[str] = SCOPES,
    optional_scopes: Sequence[str] = OPTIONAL_SCOPES,
) -> str:
    """The consent screen's URL for this install (HubSpot's `scope` is space-separated)."""
    query = {"client_id": client_id, "redirect_uri": redirect_uri, "scope": " ".join(scopes)}
    if optional_scopes:
        query["optional_scope"] = " ".join(optional_scopes)
    query["state"] = state
    return base + ("&" if "?" in base else "?") + urlencode(query)


def exchange_code(
    code: str,
    *,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    host: str = API_HOST,
    now: Callable[[], datetime],
) -> tuple[dict[str, Any], datetime]:
    """The tokens an authorization code is worth, and when the access token expires.

    The code is single use: whatever happens, it cannot be exchanged twice."""
    return _grant(
        "oauth.exchange_code", host, now, grant_type="authorization_code", code=code,
        redirect_uri=redirect_uri, client_id=client_id, client_secret=client_secret,
    )  # fmt: skip


def refresh_grant(
    refresh_token: str,
    *,
    client_id: str,
    client_secret: str,
    host: str = API_HOST,
    now: Callable[[], datetime],
) -> tuple[dict[str, Any], datetime]:
    """New tokens for a refresh token, and when the access token expires.

    A refused refresh token (400 BAD_REFRESH_TOKEN, invalid_grant: the app was uninstalled or
    the grant revoked) is PermissionDenied: refreshing again cannot help, an admin must install
    again. A refused client id or secret is InvalidRequest: our configuration, not the
    tenant's."""
    tokens, expires_at = _grant(
        "oauth.refresh", host, now, grant_type="refresh_token", client_id=client_id,
        client_secret=client_secret, refresh_token=refresh_token,
    )  # fmt: skip
    # HubSpot keeps the refresh token across refreshes; keep ours if none came back.
    tokens["refresh_token"] = tokens["refresh_token"] or refresh_token
    return tokens, expires_at


def token_info(
    access_token: str, *, client_id: str, client_secret: str, host: str = API_HOST
) -> TokenInfo:
    """The portal and scopes of an access token (`POST /oauth/2026-03/token/introspect`, which needs
    the app's client id and secret); NotFound when HubSpot says the token is not active."""
    what = "oauth.token_info"
    answer = _post(
        what, host, INTROSPECT_PATH, client_id=client_id, client_secret=client_secret,
        token=access_token, token_type_hint="access_token",
    )  # fmt: skip
    if answer.get("active") is not True:
        raise NotFound(f"HubSpot {what}: the access token is not active (unknown, expired or "
                       "revoked)")  # fmt: skip
    return TokenInfo.from_answer(answer, what)


def _grant(
    what: str, host: str, now: Callable[[], datetime], **form: str
) -> tuple[dict[str, Any], datetime]:
    answer = _post(what, host, TOKEN_PATH, **form)
    for field in ("access_token", "expires_in"):
        if answer.get(field) in (None, ""):
            raise InvalidRequest(f"HubSpot {what}: the answer has no {field}")
    tokens = {"access_token": answer["access_token"], "refresh_token": answer.get("refresh_token")}
    return tokens, now() + timedelta(seconds=int(answer["expires_in"]))


def _post(what: str, host: str, path: str, **form: str) -> dict[str, Any]:
    """POST `form` (form-encoded) to one of HubSpot's OAuth endpoints: its JSON answer, or the
    module's error for a refusal."""
    try:
        response = requests.post(
            host.rstrip("/") + path, data=form, headers={"Accept": "application/json"},
            timeout=TIMEOUT,
        )  # fmt: skip
    except requests.RequestException as exc:  # the URL in its text holds no secret
        raise Transient(f"HubSpot {what}: {type(exc).__name__}") from exc
    if response.status_code >= 400:
        raise _refused(_Refusal(response), what, form)
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise InvalidRequest(f"HubSpot {what}: {response.status_code} answer is not a JSON object")
    return answer


class _Refusal(Exception):
    """An OAuth endpoint's 4xx or 5xx, shaped as `translate` reads the SDK's ApiException."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.status = response.status_code
        self.body = response.text
        self.headers = response.headers


def _refused(exc: _Refusal, what: str, form: Mapping[str, str]) -> CrmError:
    body = _body(exc)
    status, code = body.get("status"), body.get("error")
    refresh = form.get("grant_type") == "refresh_token"
    if status == "BAD_REFRESH_TOKEN" or (refresh and code == "invalid_grant"):
        error: CrmError = PermissionDenied(
            "HubSpot refused the refresh token: the grant was revoked or the app "
            "uninstalled; install Deal Radar again"
        )
    else:
        error = translate(exc, what)
        if isinstance(error, AuthExpired):  # these endpoints' 401 refuses our client, no token
            error = InvalidRequest(f"{error} (check HUBSPOT_CLIENT_ID and HUBSPOT_CLIENT_SECRET)")
        # HubSpot's OAuth errors name the culprit in `status` (BAD_AUTH_CODE, BAD_CLIENT_ID...)
        # and in RFC 6749's `error` (invalid_grant, invalid_client...), explained by
        # `error_description` when no `message` came with it.
        described = None if body.get("message") else body.get("error_description")
        reasons = [
            r for r in (status, code, described) if isinstance(r, str) and r and r != "error"
        ]
        if reasons:
            error.args = (f"{error.args[0]} ({', '.join(reasons)})",)
    error.args = (_scrub(str(error.args[0]), form),)
    error.__cause__ = exc
    return error


def _scrub(text: str, form: Mapping[str, str]) -> str:
    """`text` with the secrets we sent replaced by `***` (an error's text is logged and stored)."""
    for name in _SECRET_FIELDS:
        secret = form.get(name)
        if secret:
            text = text.replace(secret, "***")
    return text
