"""HubSpot OAuth v1 for a public app: the consent URL, the code and refresh grants, token info.

Install: the admin's browser goes to `authorize_url(...)`; HubSpot sends it back to our
redirect URI with a `code`, which `exchange_code` swaps for tokens; `token_info` names the
portal (hub id) and the scopes granted. Later, `refresh_grant` renews the 30-minute access
token (crm-apis.md 1.1). Every call goes to HubSpot's token endpoints through the official SDK's
oauth package, with the client's TIMEOUT and its error translation.

Error policy: a refused authorization code, redirect URI, client id or secret is
`InvalidRequest` (the admin starts the install again, or our configuration is wrong); a refused
refresh token (BAD_REFRESH_TOKEN: the grant was revoked, the app uninstalled) is
`PermissionDenied`, an admin must install again; an unknown or expired access token asked
about is `NotFound`; a timeout, 5xx or dropped connection is `Transient`; a 429 `RateLimited`.
Nothing is retried here (the callback answers the browser, the jobs retry by policy), and
nothing logs a token: `token_info` puts the access token in a URL path, so the HTTP library's
DEBUG line for that request is redacted (`RedactTokenPaths`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from hubspot import HubSpot

from adapters.errors import CrmError, PermissionDenied
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

_TOKEN_PATH = re.compile(r"(/oauth/v1/(?:access|refresh)-tokens/)[^\s\"'?/]+")


class RedactTokenPaths(logging.Filter):
    """Replaces a token in an OAuth token-info URL with `***` in the HTTP library's log lines
    (urllib3 logs every request line at DEBUG, and HubSpot puts the token in the path)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/oauth/v1/" in message:
            record.msg, record.args = _TOKEN_PATH.sub(r"\1***", message), None
        return True


def hide_token_paths(logger_name: str = "urllib3.connectionpool") -> None:
    """Install RedactTokenPaths on the HTTP library's logger, once per process."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactTokenPaths) for f in logger.filters):
        logger.addFilter(RedactTokenPaths())


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
    def from_answer(cls, answer: Any) -> TokenInfo:
        """From the SDK's AccessTokenInfoResponse."""
        return cls(
            portal_id=str(answer.hub_id),
            scopes=tuple(answer.scopes or ()),
            expires_in=int(answer.expires_in or 0),
            user=answer.user or "",
            hub_domain=answer.hub_domain or "",
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
    """New tokens for a refresh token (OAuth v1), and when the access token expires.

    A refused refresh token (400 BAD_REFRESH_TOKEN: the app was uninstalled or the grant
    revoked) is PermissionDenied: refreshing again cannot help, an admin must install again.
    A refused client id or secret is InvalidRequest: our configuration, not the tenant's."""
    tokens, expires_at = _grant(
        "oauth.refresh", host, now, grant_type="refresh_token", client_id=client_id,
        client_secret=client_secret, refresh_token=refresh_token,
    )  # fmt: skip
    # HubSpot keeps the refresh token across refreshes; keep ours if none came back.
    tokens["refresh_token"] = tokens["refresh_token"] or refresh_token
    return tokens, expires_at


def token_info(access_token: str, *, host: str = API_HOST) -> TokenInfo:
    """The portal and scopes of an access token (GET /oauth/v1/access-tokens/{token})."""
    hide_token_paths()
    sdk = HubSpot(host=host.rstrip("/"))
    try:
        answer = sdk.oauth.access_tokens_api.get(access_token, _request_timeout=TIMEOUT)
    except Exception as exc:  # the oauth package's own ApiException, or the network's
        # Not chained: a network error's text holds the URL, and the URL holds the token.
        raise translate(exc, "oauth.token_info") from None
    return TokenInfo.from_answer(answer)


def _grant(
    what: str, host: str, now: Callable[[], datetime], **form: str
) -> tuple[dict[str, Any], datetime]:
    sdk = HubSpot(host=host.rstrip("/"))
    try:
        answer = sdk.oauth.tokens_api.create(**form, _request_timeout=TIMEOUT)
    except Exception as exc:  # the oauth package's own ApiException, or the network's
        raise _refused(exc, what) from exc
    tokens = {"access_token": answer.access_token, "refresh_token": answer.refresh_token}
    return tokens, now() + timedelta(seconds=int(answer.expires_in))


def _refused(exc: Exception, what: str) -> CrmError:
    body = _body(exc)
    status = body.get("status")
    if status == "BAD_REFRESH_TOKEN":
        return PermissionDenied(
            "HubSpot refused the refresh token: the grant was revoked or the app "
            "uninstalled; install Deal Radar again"
        )
    error = translate(exc, what)
    if status:
        # HubSpot's OAuth errors name the culprit in `status` (BAD_AUTH_CODE, BAD_CLIENT_ID...).
        error.args = (f"{error.args[0]} ({status})",)
    return error
