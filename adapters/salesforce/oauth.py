"""Salesforce OAuth 2.0 web-server flow with PKCE: the consent URL, the code and refresh grants.

Install: the admin's browser goes to `authorize_url(...)` on the org's login host
(`https://login.salesforce.com`, `https://test.salesforce.com` for a sandbox org, or the org's
My Domain); Salesforce sends it back to our redirect URI with a `code`, which `exchange_code`
swaps for tokens together with the PKCE `code_verifier` (Salesforce recommends PKCE for the
web-server flow: crm-apis.md 2.1). The answer names the org's `instance_url`, the API host of
every later call, and the identity URL `.../id/{org id}/{user id}`, which says whose org and
user the tokens are. There is no `expires_in`: an access token lives as long as the org's
session timeout, and is refreshed when Salesforce answers 401 (`refresh_grant`, on the same
login host).

Every request goes to the login host with requests, verifying its certificate against the
configured CA bundle (the system's by default). The token answer's `signature` (HMAC-SHA256 of
`id` + `issued_at` with the consumer secret, base64) is checked, so an answer that was not
made with our secret is refused.

Error policy: `invalid_grant` on a code (expired, used, or another verifier) is
`InvalidRequest` (start the install again); `invalid_grant` on a refresh token (revoked, the
app's policy expired it, the user deactivated) is `PermissionDenied`: an admin must install
again; `invalid_client_id`, `invalid_client` and `redirect_uri_mismatch` are `InvalidRequest`
(our configuration); a timeout, 5xx or dropped connection is `Transient`. Nothing is retried
here, and nothing logs a token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from adapters.errors import CrmError, InvalidRequest, PermissionDenied, Transient
from adapters.salesforce.client import errors_of

LOGIN_URL = "https://login.salesforce.com"
"""Production orgs' login host (a My Domain login URL works too)."""
SANDBOX_LOGIN_URL = "https://test.salesforce.com"
"""Sandbox orgs' login host."""
SCOPES: tuple[str, ...] = ("api", "refresh_token")
"""REST API access, and a refresh token so the workers keep access without the admin."""
TIMEOUT = (5.0, 30.0)


@dataclass(frozen=True)
class Grant:
    """What the token endpoint answered, and whose org and user the tokens act as."""

    tokens: dict[str, Any]
    """access_token, refresh_token, instance_url, login_url, id (the identity URL)."""
    org_id: str
    user_id: str


def new_verifier() -> str:
    """A PKCE code verifier: 43 to 128 characters of [A-Za-z0-9-._~] (RFC 7636 4.1)."""
    return secrets.token_urlsafe(64)


def challenge(verifier: str) -> str:
    """The S256 code challenge of a verifier (RFC 7636 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(
    *,
    login_url: str,
    client_id: str,
    redirect_uri: str,
    state: str,
    verifier: str,
    scopes: Sequence[str] = SCOPES,
) -> str:
    """The consent screen's URL for this install (scopes space-separated)."""
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(scopes),
        "state": state,
        "code_challenge": challenge(verifier),
        "code_challenge_method": "S256",
        "prompt": "login consent",
    }
    return f"{login_url.rstrip('/')}/services/oauth2/authorize?{urlencode(query)}"


def exchange_code(
    code: str,
    *,
    login_url: str,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    verifier: str,
    session: requests.Session | None = None,
) -> Grant:
    """The tokens an authorization code is worth (single use, whatever happens)."""
    answer = _token_call(
        "oauth.exchange_code", login_url, session, client_secret=client_secret,
        grant_type="authorization_code", code=code, client_id=client_id,
        redirect_uri=redirect_uri, code_verifier=verifier, refresh=False,
    )  # fmt: skip
    if not answer.get("refresh_token"):
        raise InvalidRequest(
            "Salesforce granted no refresh token: the connected app must allow the "
            "refresh_token scope (Perform requests at any time); fix it and install again"
        )
    return _grant(answer, login_url, refresh_token=None)


def refresh_grant(
    tokens: dict[str, Any],
    *,
    client_id: str,
    client_secret: str,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """New tokens for the stored ones. The refresh token stays unless Salesforce sends a new
    one: it does when the connected app rotates refresh tokens, and then the old one no longer
    works. The new `instance_url` replaces the old: orgs move between instances."""
    login_url = tokens.get("login_url") or LOGIN_URL
    answer = _token_call(
        "oauth.refresh", login_url, session, client_secret=client_secret,
        grant_type="refresh_token", refresh_token=tokens["refresh_token"], client_id=client_id,
        refresh=True,
    )  # fmt: skip
    kept = answer.get("refresh_token") or tokens["refresh_token"]
    return _grant(answer, login_url, refresh_token=kept).tokens


def identity(id_url: str) -> tuple[str, str]:
    """(org id, user id) from the identity URL `https://login.salesforce.com/id/{org}/{user}`."""
    parts = urlsplit(id_url).path.strip("/").split("/")
    if len(parts) < 3 or parts[-3] != "id":
        raise InvalidRequest(f"Salesforce answered an identity URL we cannot read: {id_url!r}")
    return parts[-2], parts[-1]


def _grant(answer: dict[str, Any], login_url: str, *, refresh_token: str | None) -> Grant:
    org_id, user_id = identity(str(answer.get("id") or ""))
    instance_url = str(answer.get("instance_url") or "")
    if not instance_url.startswith("https://"):
        raise InvalidRequest("Salesforce answered no https instance_url; install again")
    tokens = {
        "access_token": answer["access_token"],
        "refresh_token": refresh_token or answer["refresh_token"],
        "instance_url": instance_url.rstrip("/"),
        "login_url": login_url.rstrip("/"),
        "id": answer["id"],
    }
    return Grant(tokens, org_id, user_id)


def _token_call(
    what: str,
    login_url: str,
    session: requests.Session | None,
    *,
    client_secret: str,
    refresh: bool,
    **form: str,
) -> dict[str, Any]:
    http = session or requests.Session()
    try:
        response = http.post(
            f"{login_url.rstrip('/')}/services/oauth2/token",
            data={**form, "client_secret": client_secret},
            headers={"Accept": "application/json"},
            timeout=TIMEOUT,
        )
    except (requests.RequestException, OSError) as exc:
        raise Transient(f"Salesforce {what}: {type(exc).__name__}") from exc
    if response.status_code >= 500:
        raise Transient(f"Salesforce {what}: {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 300 or not isinstance(body, dict):
        raise _refused(what, response.status_code, body, refresh=refresh)
    for name in ("access_token", "id", "instance_url"):
        if not body.get(name):
            raise InvalidRequest(f"Salesforce {what}: the answer has no {name}")
    _check_signature(body, client_secret, what)
    return body


def _refused(what: str, status: int, body: Any, *, refresh: bool) -> CrmError:
    (code, description), *_ = errors_of(body) or [("", "")]
    text = f"Salesforce {what}: {status} {code} {description}".strip()
    if refresh and code == "invalid_grant":
        return PermissionDenied(
            f"{text}: the refresh token was revoked or expired (or its user deactivated); "
            "an admin must install Deal Radar again from /install/salesforce"
        )
    return InvalidRequest(text)


def _check_signature(body: dict[str, Any], client_secret: str, what: str) -> None:
    """Salesforce signs `id` + `issued_at` with the consumer secret (HMAC-SHA256, base64)."""
    signature, issued = body.get("signature"), body.get("issued_at")
    if not signature or not issued:
        raise InvalidRequest(f"Salesforce {what}: the answer is not signed")
    mac = hmac.new(client_secret.encode(), f"{body['id']}{issued}".encode(), hashlib.sha256)
    if not hmac.compare_digest(base64.b64encode(mac.digest()).decode(), str(signature)):
        raise InvalidRequest(
            f"Salesforce {what}: the answer's signature does not match our consumer secret; "
            "check SALESFORCE_CLIENT_SECRET"
        )
